"""FlagShip benchmarks. Each subpackage is one benchmark; see ``bench/README.md``."""
