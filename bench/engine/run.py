"""Benchmark ``flagship_sdk.engine`` against hand-written Python on four workloads.

Run from the repository root, either way::

    .venv/bin/python -m bench.engine.run [--quick] [--markdown PATH]
    .venv/bin/python bench/engine/run.py [--quick] [--markdown PATH]

First checks that the engine and the baseline give the same answer for every context of every
workload (exit status 1 if not), then times both, interleaved, and prints a Markdown table.

The same workloads are also timed through the SDK client (``flagship_sdk.FlagShipClient`` in
local mode, its evaluation counting on): ``is_enabled`` for W1 and W2, ``get_string`` for W3,
``evaluate_all`` for W4. That column shows what the client adds on top of the engine; its target
is 4x the baseline (issue 6). The client gets its ruleset from a bootstrap document and is pointed
at a closed loopback port, so no network is involved while timing.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the repository root importable so that the ``bench.engine`` imports
    # below resolve exactly as they do under ``python -m bench.engine.run``.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import gc
import importlib.metadata
import logging
import os
import platform
import socket
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.engine.baseline import Result
from bench.engine.contexts import Context, make_contexts
from bench.engine.workloads import (
    W1_KEY,
    W2_KEY,
    W3_KEY,
    MixedFlags,
    baseline_w1,
    baseline_w2,
    baseline_w3,
    mixed_flags,
    single_flag_ruleset,
)

if TYPE_CHECKING:
    from flagship_sdk import FlagShipClient
    from flagship_sdk.engine import EvaluationResult, Ruleset

TARGET_RATIO = 3.0
SDK_TARGET_RATIO = 4.0
# Spelled as an escape: ruff flags the literal sign as confusable with the letter x.
TIMES = "\u00d7"
MAX_REPORTED_MISMATCHES = 10


@dataclass(frozen=True)
class Settings:
    """How much work one invocation does."""

    contexts: int
    repeats: int
    # Wall time aimed at for one timed run of the engine on one workload; the baseline, being
    # faster, runs the same number of evaluations in less.
    run_seconds: float
    mixed_run_seconds: float


DEFAULT_SETTINGS = Settings(contexts=10_000, repeats=7, run_seconds=0.3, mixed_run_seconds=0.6)
QUICK_SETTINGS = Settings(contexts=500, repeats=3, run_seconds=0.01, mixed_run_seconds=0.02)


@dataclass
class Verification:
    """What the correctness pass found for one workload."""

    workload: str
    evaluations: int = 0
    mismatches: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> bool:
        """Whether any evaluation disagreed."""
        return bool(self.mismatches)

    @property
    def stopped(self) -> bool:
        """Whether enough disagreements were found to stop checking.

        A broken engine fails every evaluation (and may log a traceback for each), so going on
        would only flood the terminal.
        """
        return len(self.mismatches) >= MAX_REPORTED_MISMATCHES

    def check(self, engine: EvaluationResult, baseline: Result) -> list[str]:
        """Count one comparison and return its disagreements (none when the two agree)."""
        self.evaluations += 1
        self.reasons[str(baseline.reason)] += 1
        problems = _differences(engine, baseline)
        if engine.error_code is not None:
            problems.append(f"engine error_code {engine.error_code!r}")
        return problems

    def record(self, where: str, problems: list[str]) -> None:
        """Keep a description of one disagreement."""
        self.mismatches.append(f"{where}: " + "; ".join(problems))


def _same(a: object, b: object) -> bool:
    # Strict on type so that True/1 or 10/10.0 are told apart: the format keeps kinds apart.
    return type(a) is type(b) and a == b


def _differences(engine: EvaluationResult, baseline: Result) -> list[str]:
    problems = []
    for name in ("value", "variant", "reason", "rule", "prerequisite"):
        got, want = getattr(engine, name), getattr(baseline, name)
        if not _same(got, want):
            problems.append(f"{name}: engine {got!r}, baseline {want!r}")
    return problems


def verify_single(
    name: str,
    ruleset: Ruleset,
    key: str,
    baseline: Callable[[Context], Result],
    contexts: Sequence[Context],
) -> Verification:
    """Compare ``ruleset.evaluate(key, ctx)`` with ``baseline(ctx)`` on every context."""
    report = Verification(name)
    for n, ctx in enumerate(contexts):
        problems = report.check(ruleset.evaluate(key, ctx), baseline(ctx))
        if problems:
            # Described only on failure: a repr of every context would dominate the pass.
            report.record(f"context #{n} {ctx!r}", problems)
            if report.stopped:
                break
    return report


def verify_mixed(ruleset: Ruleset, mixed: MixedFlags, contexts: Sequence[Context]) -> Verification:
    """Compare ``ruleset.evaluate_all(ctx)`` with the baseline's, flag by flag, on every context."""
    report = Verification("W4")
    for n, ctx in enumerate(contexts):
        got = ruleset.evaluate_all(ctx)
        want = mixed.evaluate_all(ctx)
        if got.keys() != want.keys():
            report.mismatches.append(
                f"context #{n}: evaluate_all returned {len(got)} flags, expected {len(want)}"
            )
        else:
            for key, result in want.items():
                problems = report.check(got[key], result)
                if problems:
                    report.record(f"flag {key!r}, context #{n} {ctx!r}", problems)
        if report.stopped:
            break
    return report


# --- timing ---------------------------------------------------------------------------------------
# Each timed loop is its own small function so that the engine and the baseline run under the same
# loop shape; the only difference is the callee (and the flag key argument the engine's API takes).


def _time_engine(
    evaluate: Callable[[str, Context], object], key: str, contexts: list[Context], rounds: int
) -> int:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(rounds):
            for ctx in contexts:
                evaluate(key, ctx)
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


def sdk_client(document: dict[str, object]) -> FlagShipClient:
    """A local-mode client holding ``document``, counting on, with no server to talk to.

    The base URL is a loopback port nothing listens on: the client's background sync fails at once
    (and backs off), the bootstrap document stays its data, and counts stay in memory.
    """
    from flagship_sdk import FlagShipClient  # noqa: PLC0415  # see main: a clear error if missing

    quiet = logging.getLogger("bench.engine.sdk")
    quiet.setLevel(logging.CRITICAL)
    quiet.propagate = False
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return FlagShipClient(
        f"http://127.0.0.1:{port}",
        "fss_benchmark",
        bootstrap=document,
        stream=False,
        poll_interval=3600,
        counts_interval=3600,
        max_backoff=3600,
        timeout=0.5,
        logger=quiet,
    )


def verify_sdk(
    singles: Ruleset,
    many: Ruleset,
    single_client: FlagShipClient,
    mixed_client: FlagShipClient,
    contexts: Sequence[Context],
) -> list[str]:
    """Differences between the SDK client's answers and the engine's, on every context."""
    problems: list[str] = []
    for index, ctx in enumerate(contexts):
        pairs = [
            ("W1", single_client.is_enabled(W1_KEY, ctx), singles.evaluate(W1_KEY, ctx).value),
            ("W2", single_client.is_enabled(W2_KEY, ctx), singles.evaluate(W2_KEY, ctx).value),
            (
                "W3",
                single_client.get_string(W3_KEY, "", ctx),
                singles.evaluate(W3_KEY, ctx).value,
            ),
        ]
        expected_all = {key: result.value for key, result in many.evaluate_all(ctx).items()}
        served_all = {key: d.value for key, d in mixed_client.evaluate_all(ctx).items()}
        pairs.append(("W4", served_all, expected_all))
        problems.extend(
            f"{name}, context #{index}: SDK {served!r}, engine {expected!r}"
            for name, served, expected in pairs
            if served != expected
        )
    return problems


def _time_function(fn: Callable[[Context], object], contexts: list[Context], rounds: int) -> int:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(rounds):
            for ctx in contexts:
                fn(ctx)
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


@dataclass
class Timing:
    """Nanoseconds per evaluation of each timed run, engine and baseline side by side."""

    name: str
    description: str
    evaluations_per_run: int
    engine_ns: list[float] = field(default_factory=list)
    baseline_ns: list[float] = field(default_factory=list)
    sdk_ns: list[float] = field(default_factory=list)

    @property
    def engine_median(self) -> float:
        """Median over runs of the engine's nanoseconds per evaluation."""
        return statistics.median(self.engine_ns)

    @property
    def baseline_median(self) -> float:
        """Median over runs of the baseline's nanoseconds per evaluation."""
        return statistics.median(self.baseline_ns)

    @property
    def ratio(self) -> float:
        """How many times slower the engine is than the baseline (median against median)."""
        return self.engine_median / self.baseline_median

    @property
    def sdk_median(self) -> float:
        """Median over runs of the SDK client's nanoseconds per evaluation (0: not timed)."""
        return statistics.median(self.sdk_ns) if self.sdk_ns else 0.0

    @property
    def sdk_ratio(self) -> float:
        """How many times slower the SDK client is than the baseline."""
        return self.sdk_median / self.baseline_median


def _spread(samples: list[float]) -> float:
    """(max - min) / median: how much the runs disagree, as a fraction."""
    return (max(samples) - min(samples)) / statistics.median(samples)


@dataclass
class _Case:
    """One workload, as the timing loop sees it."""

    name: str
    description: str
    engine: Callable[[list[Context], int], int]
    baseline: Callable[[list[Context], int], int]
    # Evaluations per context: 1, or the number of flags for evaluate_all.
    per_call: int
    sdk: Callable[[list[Context], int], int] | None = None


def _calibrate(run: Callable[[list[Context], int], int], contexts: list[Context]) -> float:
    """Nanoseconds per call of ``run``, measured once on up to 1000 contexts (also a warm-up)."""
    sample = contexts[:1000]
    return run(sample, 1) / len(sample)


def time_cases(cases: list[_Case], contexts: list[Context], settings: Settings) -> list[Timing]:
    """Time every case ``settings.repeats`` times, engine and baseline interleaved.

    Single-flag workloads cycle through all contexts as many rounds as fit the time budget;
    evaluate_all runs on a window of contexts that moves along with each repetition, so that the
    repetitions together cover different users.
    """
    plans: list[tuple[_Case, Timing, int, int]] = []
    for case in cases:
        _calibrate(case.baseline, contexts)
        per_call = _calibrate(case.engine, contexts)
        budget = settings.mixed_run_seconds if case.per_call > 1 else settings.run_seconds
        calls = max(1, round(budget * 1e9 / per_call))
        if calls >= len(contexts):
            rounds, window = max(1, round(calls / len(contexts))), len(contexts)
        else:
            rounds, window = 1, calls
        timing = Timing(case.name, case.description, rounds * window * case.per_call)
        plans.append((case, timing, rounds, window))

    for repeat in range(settings.repeats):
        for case, timing, rounds, window in plans:
            start = (repeat * window) % len(contexts)
            chunk = (contexts[start:] + contexts[:start])[:window]
            # Alternate who goes first so that neither side always runs on a warmer cache.
            if repeat % 2 == 0:
                engine_ns = case.engine(chunk, rounds)
                baseline_ns = case.baseline(chunk, rounds)
            else:
                baseline_ns = case.baseline(chunk, rounds)
                engine_ns = case.engine(chunk, rounds)
            timing.engine_ns.append(engine_ns / timing.evaluations_per_run)
            timing.baseline_ns.append(baseline_ns / timing.evaluations_per_run)
            if case.sdk is not None:
                timing.sdk_ns.append(case.sdk(chunk, rounds) / timing.evaluations_per_run)
    return [timing for _, timing, _, _ in plans]


# --- report ---------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed as a distribution"


def environment_lines(settings: Settings, quick: bool) -> list[str]:
    """Describe the interpreter, machine and run settings, as Markdown bullet points."""
    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}, "
        f"{platform.python_compiler()})",
        f"- {platform.platform()}; CPU: {_cpu_model()}; {os.cpu_count()} logical cores",
        f"- flagship-sdk {_version('flagship-sdk')}, mmh3 {_version('mmh3')}",
        f"- mode: {'quick' if quick else 'default'}; {settings.contexts} distinct contexts; "
        f"median of {settings.repeats} interleaved runs per side; gc disabled while timing",
    ]


def _us(ns: float) -> str:
    return f"{ns / 1000:.3f}"


def table_lines(timings: list[Timing], flags_in_w4: int) -> list[str]:
    """The results table: µs per evaluation, engine and baseline, and their ratio."""
    lines = [
        "| Workload | Evaluations per run | Engine µs | Baseline µs | Engine / baseline "
        "| SDK µs | SDK / baseline | Run spread (engine / baseline / SDK) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for timing in timings:
        rows = [(timing.description, 1)]
        if timing.name == "W4":
            # One evaluate_all call is flags_in_w4 evaluations; show both units.
            rows = [
                (f"{timing.description}, per evaluate_all call", flags_in_w4),
                (f"{timing.description}, per flag", 1),
            ]
        for label, scale in rows:
            mark = "" if timing.ratio <= TARGET_RATIO else " ⚠"
            sdk_mark = "" if timing.sdk_ratio <= SDK_TARGET_RATIO else " ⚠"
            sdk_spread = f" / {_spread(timing.sdk_ns):.0%}" if timing.sdk_ns else ""
            lines.append(
                f"| {timing.name}: {label} | {timing.evaluations_per_run:,} "
                f"| {_us(timing.engine_median * scale)} | {_us(timing.baseline_median * scale)} "
                f"| {timing.ratio:.2f}{TIMES}{mark} "
                f"| {_us(timing.sdk_median * scale)} | {timing.sdk_ratio:.2f}{TIMES}{sdk_mark} "
                f"| {_spread(timing.engine_ns):.0%} / {_spread(timing.baseline_ns):.0%}"
                f"{sdk_spread} |"
            )
    return lines


def verification_lines(reports: list[Verification]) -> list[str]:
    """One line per workload: how many evaluations agreed, and the mix of reasons served."""
    lines = []
    for report in reports:
        mix = ", ".join(
            f"{reason} {count / report.evaluations:.0%}"
            for reason, count in report.reasons.most_common()
        )
        count = f"{len(report.mismatches)}{'+' if report.stopped else ''}"
        status = f"{count} DISAGREE" if report.failed else "all agree"
        lines.append(f"- {report.workload}: {report.evaluations:,} evaluations, {status} ({mix})")
    return lines


# --- main -----------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine.run",
        description="Benchmark flagship_sdk.engine against hand-written Python evaluation.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run (seconds), e.g. for a smoke test"
    )
    parser.add_argument(
        "--markdown", metavar="PATH", type=Path, help="also write the report to this file"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Verify, time and report. Returns 0, 1 if engine and baseline disagree, 2 if no engine."""
    args = _parse(argv)
    settings = QUICK_SETTINGS if args.quick else DEFAULT_SETTINGS
    started = time.perf_counter()
    try:
        # Imported here, not at the top, so that a missing engine is a clear message and exit 2.
        from flagship_sdk.engine import Ruleset  # noqa: PLC0415
    except ImportError as exc:
        print(
            f"error: cannot import flagship_sdk.engine ({exc}); install it with "
            "`.venv/bin/pip install -e sdk/python`",
            file=sys.stderr,
        )
        return 2

    contexts = make_contexts(settings.contexts)
    singles = Ruleset.from_dict(single_flag_ruleset())
    mixed = mixed_flags()
    many = Ruleset.from_dict(mixed.document)
    flag_count = len(mixed.baselines)

    reports = [
        verify_single("W1", singles, W1_KEY, baseline_w1, contexts),
        verify_single("W2", singles, W2_KEY, baseline_w2, contexts),
        verify_single("W3", singles, W3_KEY, baseline_w3, contexts),
        verify_mixed(many, mixed, contexts),
    ]
    failed = [r for r in reports if r.failed]
    if failed:
        print("VERIFICATION FAILED: the engine and the baseline disagree.", file=sys.stderr)
        for report in failed:
            stop = " (stopped there)" if report.stopped else ""
            print(f"{report.workload}: disagreements{stop}:", file=sys.stderr)
            for line in report.mismatches:
                print(f"  {line}", file=sys.stderr)
        print("\n".join(verification_lines(reports)), file=sys.stderr)
        return 1

    evaluate, evaluate_all = singles.evaluate, many.evaluate_all
    single_client = sdk_client(single_flag_ruleset())
    mixed_client = sdk_client(mixed.document)
    sdk_problems = verify_sdk(singles, many, single_client, mixed_client, contexts)
    if sdk_problems:
        print("VERIFICATION FAILED: the SDK client and the engine disagree.", file=sys.stderr)
        print("\n".join(sdk_problems[:MAX_REPORTED_MISMATCHES]), file=sys.stderr)
        return 1

    def engine_single(key: str) -> Callable[[list[Context], int], int]:
        return lambda ctxs, rounds: _time_engine(evaluate, key, ctxs, rounds)

    def sdk_single(getter: Callable[..., object], key: str) -> Callable[[list[Context], int], int]:
        return lambda ctxs, rounds: _time_engine(getter, key, ctxs, rounds)

    def function(fn: Callable[[Context], object]) -> Callable[[list[Context], int], int]:
        return lambda ctxs, rounds: _time_function(fn, ctxs, rounds)

    cases = [
        _Case(
            "W1",
            "static boolean",
            engine_single(W1_KEY),
            function(baseline_w1),
            1,
            sdk_single(single_client.is_enabled, W1_KEY),
        ),
        _Case(
            "W2",
            "25 % rollout",
            engine_single(W2_KEY),
            function(baseline_w2),
            1,
            sdk_single(single_client.is_enabled, W2_KEY),
        ),
        _Case(
            "W3",
            "3 rules + 50/50 split",
            engine_single(W3_KEY),
            function(baseline_w3),
            1,
            sdk_single(lambda key, ctx: single_client.get_string(key, "", ctx), W3_KEY),
        ),
        _Case(
            "W4",
            f"evaluate_all, {flag_count} mixed flags",
            function(evaluate_all),
            function(mixed.evaluate_all),
            flag_count,
            function(mixed_client.evaluate_all),
        ),
    ]
    try:
        timings = time_cases(cases, contexts, settings)
    finally:
        single_client.close()
        mixed_client.close()

    mix = ", ".join(f"{count} {name}" for name, count in mixed.mix.items())
    report_lines = [
        "## Engine benchmark: flagship_sdk.engine against hand-written Python",
        "",
        *environment_lines(settings, args.quick),
        "",
        *table_lines(timings, flag_count),
        "",
        f"µs per evaluation (W4: also per evaluate_all call), median of {settings.repeats} runs; "
        f"ratio = engine median / baseline median; target ≤ {TARGET_RATIO:g}{TIMES} (⚠ = above). "
        f"SDK: the same workload through `FlagShipClient` (local mode, counting on; "
        f"`is_enabled`, `get_string`, `evaluate_all`), target ≤ {SDK_TARGET_RATIO:g}{TIMES} "
        "the baseline.",
        f"W4 flags: {mix}.",
        "",
        "Verification (engine and baseline agree on value, variant, reason, rule, prerequisite):",
        *verification_lines(reports),
    ]
    text = "\n".join(report_lines) + "\n"
    print(text, end="")
    print(f"(total time {time.perf_counter() - started:.1f} s)")
    if args.markdown is not None:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
