"""Behavioural tests of a trained model, in the style of Made-With-ML's model tests.

Each test changes the holdout (or picks a slice of it) and checks what the model
does: an invariance test changes features that must not matter and expects the
scores (nearly) unchanged; a directional test grows features and expects the
scores to follow one way; a slice test expects a minimum quality on a named slice.
A slice too small to judge is reported as such, neither passed nor failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pipelines.config.responsible import BehaviourSpec, DirectionalTest, PerturbationTest, SliceTest
from pipelines.training import metrics

PASS, FAIL, TOO_SMALL = "pass", "fail", "too_small"


@dataclass
class TestResult:
    name: str
    kind: str  # invariance, directional, slice
    status: str  # pass, fail, too_small
    detail: str
    value: float | None = None  # share of rows that broke the expectation, or the slice's metric

    def to_dict(self) -> dict:
        return asdict(self)


def run_tests(
    spec: BehaviourSpec,
    task: str,
    primary: str,
    predict: Callable[[pd.DataFrame], np.ndarray],
    frame: pd.DataFrame,
    y: np.ndarray,
    threshold: float | None,
) -> list[TestResult]:
    """Every test of ``spec`` on ``frame`` (holdout rows with their labels ``y``) through ``predict``."""
    base = np.asarray(predict(frame), dtype=float)
    results = [_perturbation(t, "invariance", predict, frame, base) for t in spec.invariance]
    results += [_perturbation(t, "directional", predict, frame, base) for t in spec.directional]
    results += [_slice(t, task, primary, frame, np.asarray(y), base, threshold) for t in spec.slices]
    return results


def perturbed(frame: pd.DataFrame, test: PerturbationTest) -> pd.DataFrame:
    """``frame`` with the test's features changed, the rest held."""
    changed = frame.copy()
    for feature in test.features:
        column = changed[feature].astype(float)
        changed[feature] = column + test.add if test.add is not None else column * float(test.scale or 1.0)
    return changed


def _perturbation(
    test: PerturbationTest, kind: str, predict: Callable, frame: pd.DataFrame, base: np.ndarray
) -> TestResult:
    if not len(frame):
        return TestResult(test.name, kind, TOO_SMALL, "no rows to test on")
    delta = np.asarray(predict(perturbed(frame, test)), dtype=float) - base
    change = f"{'+' if test.add is not None else 'x'}{test.add if test.add is not None else test.scale}"
    what = f"{', '.join(test.features)} {change}"
    if isinstance(test, DirectionalTest):
        broken = delta < -test.tolerance if test.direction == "increasing" else delta > test.tolerance
        expectation = f"scores {'never fall' if test.direction == 'increasing' else 'never rise'}"
    else:
        broken = np.abs(delta) > test.tolerance
        expectation = "scores unchanged"
    share = float(broken.mean())
    status = PASS if share <= test.max_share else FAIL
    detail = (
        f"{what}: {expectation} (tolerance {test.tolerance}); {int(broken.sum())} of {len(delta)} rows "
        f"({share:.1%}) broke it, allowed {test.max_share:.1%}; largest change {_signed(delta, broken)}"
    )
    return TestResult(test.name, kind, status, detail, share)


def _signed(delta: np.ndarray, broken: np.ndarray) -> str:
    pool = delta[broken] if broken.any() else delta
    return f"{pool[np.argmax(np.abs(pool))]:+.4f}" if len(pool) else "n/a"


def _slice(
    test: SliceTest,
    task: str,
    primary: str,
    frame: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float | None,
) -> TestResult:
    mask = np.ones(len(frame), dtype=bool)
    for feature, (low, high) in test.where.items():
        values = frame[feature].to_numpy(dtype=float, na_value=np.nan)
        if low is not None:
            mask &= values >= low
        if high is not None:
            mask &= values <= high
    rows = int(mask.sum())
    where = ", ".join(f"{f} in [{lo}, {hi}]" for f, (lo, hi) in test.where.items())
    if rows < test.min_rows or (task == "binary" and len(np.unique(y[mask])) < 2):
        return TestResult(
            test.name, "slice", TOO_SMALL, f"{where}: {rows} rows, too few to judge (min {test.min_rows})"
        )
    value = metrics.metrics_for(task, y[mask], scores[mask], threshold).get(primary, float("nan"))
    status = PASS if metrics.is_number(value) and value >= test.floor else FAIL
    return TestResult(
        test.name, "slice", status, f"{where}: {primary} {value:.4f} on {rows} rows vs floor {test.floor}", value
    )
