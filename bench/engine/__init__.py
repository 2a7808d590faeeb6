"""Benchmark of the evaluation engine against hand-written Python (``bench/README.md``)."""
