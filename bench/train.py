"""Benchmark: the training task against a raw XGBoost fit of the same matrix.

    .venv/bin/python bench/train.py [--entities 50000] [--days 10] [--peak-entities 100000]

On a window of ``entities x days`` labelled rows (default 500k; synthetic feature
and label partitions, labels drawn from a logistic function of a few features):

* ours: what churn_train's tasks do for the XGBoost candidate: the Feast point-in-time
  retrieval of the window, the time split, the fit, MLflow logging (metrics, segments,
  plots, the model) and registration as challenger, plus the promotion gate;
* raw: ``xgboost.train`` on the same training matrix with the same parameters and early
  stopping on the same validation days, in the same run.

Then the peak memory of the training task on a ``peak-entities x days`` window
(default 1M rows), in a fresh process so the figure is its own.
State lives in ``$MLOPS_HOME/bench_train`` and is rebuilt on each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from synthetic import write_feature_partitions, write_label_partitions  # noqa: E402


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(home: Path, entities: int, days: int):
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.features.definitions import feast_objects
    from pipelines.stores import feature_store

    end = write_label_partitions(write_feature_partitions(entities, days))
    feature_store.apply_if_changed(feature_store.get_store(), feast_objects(get_usecase("churn")))
    return end


def training_task(end) -> dict:
    """The work of churn_train for one candidate, timed step by step."""
    from pipelines.config import get_usecase
    from pipelines.promotion.gate import gate
    from pipelines.stores import mlflow_store
    from pipelines.training.dataset import build_training_data, split_by_time
    from pipelines.training.train import train_candidates

    usecase = get_usecase("churn")
    steps = {}
    t0 = time.perf_counter()
    data = build_training_data(usecase, end)
    steps["retrieval"] = time.perf_counter() - t0
    t = time.perf_counter()
    outcome = train_candidates(usecase, data, ["xgboost"], tags={"trigger_reason": "benchmark"})
    steps["train_and_log"] = time.perf_counter() - t
    best = outcome.best_result()
    t = time.perf_counter()
    version = mlflow_store.register_challenger(usecase, best.model_uri, best.run_id, {"threshold": str(best.threshold)})
    steps["register"] = time.perf_counter() - t
    t = time.perf_counter()
    record = gate(usecase, version, split_by_time(data.frame, usecase.training, usecase.entity.name).holdout)
    steps["gate"] = time.perf_counter() - t
    return {
        "rows": len(data.frame),
        "seconds": time.perf_counter() - t0,
        "fit_seconds": best.fit_seconds,
        "steps": steps,
        "auc": best.holdout.get("roc_auc"),
        "decision": record["decision"],
        "peak_mb": _peak_mb(),
        "training_set": str(data.path),
    }


def raw_fit(training_set: str) -> dict:
    """xgboost.train on the same split, parameters and early stopping, from the matrix in memory."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from pipelines.config import get_usecase
    from pipelines.training.candidates import _fit_xgboost
    from pipelines.training.dataset import model_features, split_by_time

    usecase = get_usecase("churn")
    split = split_by_time(pd.read_parquet(training_set), usecase.training, usecase.entity.name)
    features = model_features(usecase)
    x_train, y_train = split.train[features].to_numpy(np.float32), split.train["churned"].to_numpy()
    x_valid, y_valid = split.validation[features].to_numpy(np.float32), split.validation["churned"].to_numpy()
    _, params = _fit_xgboost(
        usecase.training.candidates["xgboost"].params,
        "binary",
        42,
        x_train[:10],
        y_train[:10],
        x_valid[:10],
        y_valid[:10],
    )  # the parameters ours resolves, from a tiny fit
    booster_params = {
        k: v for k, v in params.items() if k not in ("n_estimators", "early_stopping_rounds", "best_iteration")
    }
    t0 = time.perf_counter()
    train, valid = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_valid, label=y_valid)
    xgb.train(
        booster_params,
        train,
        num_boost_round=params["n_estimators"],
        evals=[(valid, "validation")],
        early_stopping_rounds=params["early_stopping_rounds"],
        verbose_eval=False,
    )
    return {"seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--peak-entities", type=int, default=100_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench_train"
    if args.child:  # the peak-memory run, in its own process
        end = prepare(home / "peak", args.peak_entities, args.days)
        print(json.dumps(training_task(end)))
        return

    end = prepare(home / "timed", args.entities, args.days)
    ours = training_task(end)
    raw = raw_fit(ours["training_set"])
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--days", str(args.days), "--peak-entities", str(args.peak_entities)],
        capture_output=True,
        text=True,
        env=os.environ | {"MLOPS_HOME": str(home.parent)},
    )
    if child.returncode:
        sys.exit(f"peak-memory run failed:\n{child.stderr[-3000:]}")
    peak = json.loads(child.stdout.strip().splitlines()[-1])

    outside = ours["seconds"] - ours["fit_seconds"]
    print(
        f"\nwindow of {ours['rows']:,} labelled rows x 29 features, XGBoost candidate (holdout AUC {ours['auc']:.3f})"
    )
    print(f"{'':<52}{'seconds':>10}")
    print(f"{'raw: xgboost.train, same matrix, params, early stop':<52}{raw['seconds']:>10.1f}")
    print(f"{'ours: training task (retrieval .. gate)':<52}{ours['seconds']:>10.1f}")
    for step, seconds in ours["steps"].items():
        print(f"{'  ' + step:<52}{seconds:>10.1f}")
    print(f"{'  of which the fit itself':<52}{ours['fit_seconds']:>10.1f}")
    print(
        f"ratio raw/ours: {raw['seconds'] / ours['seconds']:.2f}; share outside the fit: "
        f"{outside / ours['seconds']:.0%}"
    )
    print(
        f"peak memory of the training task on {peak['rows']:,} rows: {peak['peak_mb']:,.0f} MB (target well under "
        f"8 GB); it took {peak['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
