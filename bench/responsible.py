"""Benchmark: what the responsible gate costs, against the raw library doing the scoring alone.

    .venv/bin/python bench/responsible.py [--rows 100000] [--holdout 2000]

On a synthetic churn-shaped matrix (29 features, the demo's count; a logit of a few of
them) it fits the demo's two candidate kinds with the project's own code
(``pipelines.training.candidates``) and prints, per kind:

* explanations per million rows (measured on ``--rows``, scaled): ``Fitted.contributions`` (XGBoost's TreeSHAP with
  ``pred_contribs``; coefficient times centred feature for the logistic model) against
  scoring the same rows with the raw library (``inplace_predict`` / ``predict_proba``):
  the ratio is what ``inference.reasons`` adds to scoring, before the top-k pick;
* the gate's extra time per candidate on a holdout of ``--holdout`` rows: the fairness
  figures (Fairlearn, two attributes), the behavioural tests of configs/churn.yaml and the
  global explanation (``pipelines.promotion.responsible.assess``) against scoring that
  holdout once.

Prints one line per figure. By hand (`make bench`), not in CI.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _data(rows: int, features: list[str], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((rows, len(features))).astype(np.float32), columns=features)
    for prefix, values in (
        ("plan_is_", ("basic", "standard", "premium")),
        ("region_is_", ("north", "south", "east", "west")),
    ):
        picked = rng.integers(0, len(values), rows)
        for i, value in enumerate(values):
            frame[f"{prefix}{value}"] = (picked == i).astype(np.float32)
    frame["support_tickets_sum_7d"] = rng.poisson(0.5, rows).astype(np.float32)
    frame["support_tickets_sum_14d"] = frame["support_tickets_sum_7d"] + rng.poisson(0.5, rows)
    logit = -3 + 1.0 * frame["support_tickets_sum_7d"] + 2 * frame["payment_delay_days_mean_7d"]
    return frame, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--holdout", type=int, default=2000)
    args = parser.parse_args()

    from pipelines.config import get_usecase
    from pipelines.promotion.policy import Evaluation
    from pipelines.responsible import behaviour, explain, fairness
    from pipelines.training.candidates import fit
    from pipelines.training.dataset import model_features

    usecase = get_usecase("churn")
    spec = usecase.training
    features = model_features(usecase)
    train, y_train = _data(20_000, features, 1)
    big, _ = _data(args.rows, features, 2)
    holdout, y_holdout = _data(args.holdout, features, 3)
    x_train = train[features].to_numpy(np.float32)
    matrix = big[features].to_numpy(np.float32)
    per_million = 1_000_000 / args.rows
    for candidate in spec.candidates.values():
        fitted, _ = fit(candidate, "binary", spec.seed, x_train, y_train, x_train[:4000], y_train[:4000])
        score = _best(lambda f=fitted: f.score(matrix))
        contribute = _best(lambda f=fitted: f.contributions(matrix), repeat=1)
        print(
            f"{candidate.kind}: scoring {score * per_million:.2f} s per million rows, explanations "
            f"{contribute * per_million:.2f} s per million rows ({contribute / score:.1f}x scoring)"
        )
        x_holdout = holdout[features].to_numpy(np.float32)
        once = _best(lambda f=fitted, x=x_holdout: f.score(x))
        scores = fitted.score(x_holdout)

        def assess(f=fitted, s=scores) -> None:
            result = Evaluation(version="bench")
            result.fairness = fairness.group_metrics("binary", holdout, y_holdout, s, 0.2, spec.fairness)

            def predict(frame: pd.DataFrame) -> np.ndarray:
                return f.score(frame[features].to_numpy(np.float32))

            result.behaviour = [
                t.to_dict()
                for t in behaviour.run_tests(spec.behaviour, "binary", "roc_auc", predict, holdout, y_holdout, 0.2)
            ]
            result.importance = explain.global_importance(explain.explain(f, holdout, features), 10)

        extra = _best(assess)
        tests = len(spec.behaviour.invariance) + len(spec.behaviour.directional) + len(spec.behaviour.slices)
        print(
            f"{candidate.kind}: the gate's extra time on {args.holdout} holdout rows {extra:.3f} s "
            f"(fairness, {tests} behavioural tests, global explanation) vs scoring them once {once * 1000:.1f} ms"
        )
        t0 = time.perf_counter()
        explain.top_reasons(explain.explain(fitted, big, features), big, 3)
        reasons = time.perf_counter() - t0
        print(
            f"{candidate.kind}: top 3 reasons as stored (JSON per row) {reasons * per_million:.2f} s per million rows"
        )


if __name__ == "__main__":
    main()
