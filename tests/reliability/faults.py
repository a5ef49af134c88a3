"""Kill a writer at seeded points of its run, then check what readers see before and after a rerun.

Each writer runs in a child process forked from a fork server that imported the
project's libraries once (``multiprocessing``'s "forkserver": a fresh process, not
the test worker with its threads and open connections), so a child starts in
milliseconds. A child counts the Python function calls it makes (``sys.setprofile``)
and sends itself SIGKILL at a chosen call: no handler runs, no ``finally``, no
flush, as when the kernel's OOM killer or a node failure stops a worker. The
points are spread over the writer's whole run: the calls of an uninterrupted run
are split into equal stretches and one point is drawn at random (seeded) in each.

``MLOPS_FAULT_POINTS`` sets the drawn points per writer (default 1, as CI runs it, beside
the writers' named points; by hand 20, as docs/reliability/index.md records),
``MLOPS_FAULT_SEED`` the seed.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import os
import random
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POINTS = int(os.environ.get("MLOPS_FAULT_POINTS", "1"))
SEED = int(os.environ.get("MLOPS_FAULT_SEED", "20261204"))
CHILD_TIMEOUT = 600

_PRELOAD = [
    "pandas",
    "pyarrow.parquet",
    "sqlalchemy",
    "mlflow",
    "feast",
    "sklearn",
    "xgboost",
    "great_expectations",
    "evidently",
    "pipelines.ingestion.ingest",
    "pipelines.features.materialize",
    "pipelines.training.run",
    "pipelines.inference.batch",
    "pipelines.monitoring.monitor",
    "tests.reliability.writers",
]
_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(_PRELOAD)
    return _CONTEXT


def _resolve(name: str) -> Callable[..., Any]:
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def _full_disk(max_bytes: int) -> None:
    """Make every file this process writes stop growing at ``max_bytes``, as a full disk would:
    a write beyond it fails with EFBIG (an OSError) instead of the default SIGXFSZ kill."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.RLIM_INFINITY))


def _child(home: str, target: str, kill_at: int | str | None, counted: bool, conn: Any) -> None:
    """In the child: run ``target(home)`` on the state ``home``; SIGKILL at call number ``kill_at``, or at
    the entry of the function it names (``module.function``); send back
    ``(calls made, what the target returned)`` or ``("error", traceback)``. Calls are counted (at about
    half speed) only when ``counted`` or ``kill_at`` asks for it."""
    os.environ["MLOPS_HOME"] = home
    os.environ["MLOPS_DATA_DOCS"] = "deferred"
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]  # the state's own MLflow store, whatever the fork server inherited
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def at_entry(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}" == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        fn = _resolve(target)
        if isinstance(kill_at, str) and kill_at.startswith("disk-full:"):
            _full_disk(int(kill_at.removeprefix("disk-full:")))
        elif isinstance(kill_at, str):  # a named point: the entry of that function
            sys.setprofile(at_entry)
        elif counted or kill_at is not None:
            sys.setprofile(count)
        try:
            result = fn(Path(home))
        finally:
            sys.setprofile(None)
        conn.send((calls, result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


@dataclass
class Outcome:
    killed: bool
    calls: int | str | None
    result: Any


def start(home: Path, target: str, kill_at: int | str | None = None, counted: bool = False) -> tuple[Any, Any]:
    """Start ``target`` (``module:function``, called with the state folder) in a forked child on ``home``."""
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(str(home), target, kill_at, counted, send))
    child.start()
    send.close()
    return child, receive


def finish(started: tuple[Any, Any], home: Path, target: str, kill_at: int | str | None = None) -> Outcome:
    """Wait for a child :func:`start` started; its outcome (raises if it failed other than by the kill)."""
    child, receive = started
    try:
        got = receive.recv() if receive.poll(CHILD_TIMEOUT) else None
    except EOFError:  # it ended without a word: killed, or died
        got = None
    child.join(CHILD_TIMEOUT)
    if child.exitcode is None:
        child.kill()
        raise AssertionError(f"{target} on {home} did not end within {CHILD_TIMEOUT} s (kill point {kill_at})")
    if child.exitcode == -signal.SIGKILL:
        return Outcome(killed=True, calls=kill_at, result=None)
    if got is None or got[0] == "error":
        raise AssertionError(f"{target} on {home} failed:\n{got[1] if got else f'exit code {child.exitcode}'}")
    return Outcome(killed=False, calls=got[0], result=got[1])


def run(home: Path, target: str, kill_at: int | str | None = None, counted: bool = False) -> Outcome:
    """Run ``target`` in a forked child on ``home`` (:func:`start`, then :func:`finish`)."""
    return finish(start(home, target, kill_at, counted), home, target, kill_at)


def fill_disk(writer: Writer, base: Path, work: Path, max_bytes: int = 16_000) -> str:
    """Run ``writer`` on a copy of ``base`` with a full disk (no file grows past ``max_bytes``), check its
    invariants, then rerun it with room and compare with an uninterrupted run. Returns the error it met."""
    reference = _copy(base, work / "reference")
    run(reference, writer.write)
    expected = run(reference, writer.observe).result
    state = _copy(base, work / "disk-full")
    try:
        run(state, writer.write, kill_at=f"disk-full:{max_bytes}")
    except AssertionError as exc:
        error = str(exc)
    else:
        raise AssertionError(f"{writer.name} wrote nothing past {max_bytes} bytes: no full disk was met")
    problems = run(state, writer.invariants).result
    assert not problems, f"{writer.name} with a full disk left: {problems}"
    run(state, writer.write)
    seen = run(state, writer.observe).result
    assert seen == expected, f"{writer.name} after a full disk: {_difference(expected, seen)}"
    return error


def kill_points(calls: int, points: int = POINTS, seed: int = SEED) -> list[int]:
    """``points`` call numbers in ``[1, calls)``, one drawn at random in each of as many equal stretches."""
    rng = random.Random(seed)
    edges = [1 + (calls - 1) * i // points for i in range(points + 1)]
    return [rng.randrange(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]


@dataclass(frozen=True)
class Writer:
    """One writer of the state, and how to judge what a kill left.

    ``setup``, ``write``, ``invariants`` and ``observe`` name ``module:function``s run in a child
    with the state folder: ``setup`` prepares the writer's input once; ``write`` is the write that
    is killed; ``invariants`` returns the problems a reader would meet in the state a kill left
    (none expected); ``observe`` returns what a finished write left, which a rerun after a kill
    must reproduce exactly."""

    name: str
    setup: str
    write: str
    invariants: str
    observe: str
    base: str = "labelled"  # the prepared state it starts from (test_faults.bases)
    notes: str = ""
    named: tuple[str, ...] = ()  # functions to kill it at the entry of, besides the drawn points


@dataclass
class Survey:
    """What happened at each kill point of one writer."""

    writer: str
    calls: int
    points: list[int | str]
    killed: int = 0
    finished_first: int = 0
    problems: dict[int | str, list[str]] = field(default_factory=dict)
    diverged: dict[int | str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.diverged


def survey(writer: Writer, base: Path, work: Path, points: int = POINTS, seed: int = SEED) -> Survey:
    """Kill ``writer`` at ``points`` seeded points of its run on copies of ``base``, checking each.

    1. An uninterrupted run on a copy counts its calls and gives the expected result.
    2. At each point, on a fresh copy: run and SIGKILL; the invariants hold in what was left;
       a rerun to the end leaves exactly the expected result.
    """
    reference = _copy(base, work / "reference")
    done = run(reference, writer.write, counted=True)
    wrong = run(reference, writer.invariants).result
    assert not wrong, f"{writer.name}: the invariants fail after an uninterrupted write: {wrong}"
    expected = run(reference, writer.observe).result
    drawn: list[int | str] = list(kill_points(int(done.calls or 2), points, seed))
    result = Survey(writer.name, int(done.calls or 0), drawn + list(writer.named))
    for point in result.points:
        state = _copy(base, work / f"killed-at-{point}".replace(".", "-"))
        outcome = run(state, writer.write, kill_at=point)
        result.killed += outcome.killed
        result.finished_first += not outcome.killed
        problems = run(state, writer.invariants).result
        if problems:
            result.problems[point] = problems
        run(state, writer.write)
        seen = run(state, writer.observe).result
        if seen != expected:
            result.diverged[point] = _difference(expected, seen)
        shutil.rmtree(state)
    return result


def _copy(base: Path, target: Path) -> Path:
    """A copy of the prepared state ``base`` at ``target``, relocated (its stores name the copy)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target, symlinks=True)
    run(target, "tests.reliability.writers:relocated")
    return target


def _difference(expected: Any, seen: Any) -> str:
    if isinstance(expected, dict) and isinstance(seen, dict):
        keys = sorted(set(expected) | set(seen))
        diffs = [
            f"{k}: expected {expected.get(k)!r}, got {seen.get(k)!r}" for k in keys if expected.get(k) != seen.get(k)
        ]
        return "; ".join(diffs)[:2000]
    return f"expected {expected!r}, got {seen!r}"[:2000]
