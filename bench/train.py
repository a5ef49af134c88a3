"""Benchmark: the training task against a raw XGBoost fit of the same matrix.

    .venv/bin/python bench/train.py [--entities 50000] [--days 10] [--peak-entities 100000]

On a window of ``entities x days`` labelled rows (default 500k; synthetic feature
and label partitions, labels drawn from a logistic function of a few features):

* ours: what churn_train's tasks do for the XGBoost candidate: the point-in-time join of
  the window (``merge_asof`` over the feature partitions; ``--via feast`` for Feast's
  offline retrieval), the time split, the fit, MLflow logging (metrics, segments,
  fairness, explanations, plots, the model) and registration as challenger, plus the
  promotion gate;
* raw fit: ``xgboost.train`` on the same training matrix with the same parameters and
  early stopping on the same validation days, in the same run;
* raw whole job: the same window with the raw libraries in one go: read the label and
  feature partitions, the point-in-time join with ``pandas.merge_asof`` (same TTL), the
  split by day and that ``xgboost.train``.

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


def churn():
    """The churn use case, every synthetic day trainable (the config's warm-up is about the simulated
    source's first days, whose rolling windows saw less history)."""
    from pipelines.config import get_usecase

    usecase = get_usecase("churn")
    return usecase.model_copy(update={"training": usecase.training.model_copy(update={"warmup_days": 0})})


def training_task(end, via: str = "partitions") -> dict:
    """The work of churn_train for one candidate, timed step by step."""
    from pipelines.promotion.gate import gate
    from pipelines.stores import mlflow_store
    from pipelines.training.dataset import build_training_data, split_by_time
    from pipelines.training.train import train_candidates

    usecase = churn()
    steps = {}
    t0 = time.perf_counter()
    data = build_training_data(usecase, end, via=via)
    steps["point-in-time join"] = time.perf_counter() - t0
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


def booster_params(usecase, x_train, y_train, x_valid, y_valid) -> tuple[dict, dict]:
    """The parameters ours resolves for the XGBoost candidate (from a tiny fit), as xgboost.train takes them."""
    from pipelines.training.candidates import _fit_xgboost

    _, params = _fit_xgboost(
        usecase.training.candidates["xgboost"].params, "binary", 42, x_train[:10], y_train[:10], x_valid[:10],
        y_valid[:10],
    )  # fmt: skip
    return {k: v for k, v in params.items() if k not in ("n_estimators", "early_stopping_rounds", "best_iteration")}, (
        params
    )


def raw_whole(home: Path, end) -> dict:
    """Labels and features read from their partitions, merge_asof, the split by day and xgboost.train."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from pipelines.config import get_usecase
    from pipelines.training.dataset import model_features

    usecase = get_usecase("churn")
    features = model_features(usecase)
    spec = usecase.training
    t0 = time.perf_counter()
    labels = pd.concat(
        [pd.read_parquet(p) for p in sorted((home / "curated" / "churn" / "labels").glob("*.parquet"))],
        ignore_index=True,
    )
    labels = labels[labels["label_timestamp"] < pd.Timestamp(end)]
    rows = pd.DataFrame(
        {
            "customer_id": labels["customer_id"].to_numpy(),
            "event_timestamp": (labels["reference_date"] + pd.Timedelta(days=1)).astype("datetime64[ns, UTC]"),
            "churned": labels["churned"].to_numpy(),
        }
    )
    table = pd.concat(
        [
            pd.read_parquet(p, columns=["customer_id", "feature_timestamp", *features])
            for p in sorted((home / "features" / "churn" / "activity").glob("*.parquet"))
        ],
        ignore_index=True,
    )
    table["feature_timestamp"] = table["feature_timestamp"].astype("datetime64[ns, UTC]")
    frame = pd.merge_asof(
        rows.sort_values("event_timestamp"), table.sort_values("feature_timestamp"), left_on="event_timestamp",
        right_on="feature_timestamp", by="customer_id", tolerance=pd.Timedelta(days=usecase.features.ttl_days),
    ).dropna(subset=features, how="all")  # fmt: skip
    days = np.sort(frame["event_timestamp"].unique())
    validation_from, holdout_from = days[-(spec.holdout_days + spec.validation_days)], days[-spec.holdout_days]
    train = frame[frame["event_timestamp"] < validation_from]
    valid = frame[(frame["event_timestamp"] >= validation_from) & (frame["event_timestamp"] < holdout_from)]
    x_train, y_train = train[features].to_numpy(np.float32), train["churned"].to_numpy()
    x_valid, y_valid = valid[features].to_numpy(np.float32), valid["churned"].to_numpy()
    params, resolved = booster_params(usecase, x_train, y_train, x_valid, y_valid)
    xgb.train(
        params, xgb.DMatrix(x_train, label=y_train), num_boost_round=resolved["n_estimators"],
        evals=[(xgb.DMatrix(x_valid, label=y_valid), "validation")],
        early_stopping_rounds=resolved["early_stopping_rounds"], verbose_eval=False,
    )  # fmt: skip
    return {"seconds": time.perf_counter() - t0, "rows": len(frame)}


def raw_fit(training_set: str) -> dict:
    """xgboost.train on the same split, parameters and early stopping, from the matrix in memory."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from pipelines.config import get_usecase
    from pipelines.training.dataset import model_features, split_by_time

    usecase = get_usecase("churn")
    split = split_by_time(pd.read_parquet(training_set), usecase.training, usecase.entity.name)
    features = model_features(usecase)
    x_train, y_train = split.train[features].to_numpy(np.float32), split.train["churned"].to_numpy()
    x_valid, y_valid = split.validation[features].to_numpy(np.float32), split.validation["churned"].to_numpy()
    params, resolved = booster_params(usecase, x_train, y_train, x_valid, y_valid)
    t0 = time.perf_counter()
    train, valid = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_valid, label=y_valid)
    xgb.train(
        params,
        train,
        num_boost_round=resolved["n_estimators"],
        evals=[(valid, "validation")],
        early_stopping_rounds=resolved["early_stopping_rounds"],
        verbose_eval=False,
    )
    return {"seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--peak-entities", type=int, default=100_000)
    parser.add_argument(
        "--via", choices=["partitions", "feast"], default="partitions", help="the point-in-time join's path"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench_train"
    if args.child:  # the peak-memory run, in its own process
        end = prepare(home / "peak", args.peak_entities, args.days)
        print(json.dumps(training_task(end, args.via)))
        return

    end = prepare(home / "timed", args.entities, args.days)
    ours = training_task(end, args.via)
    raw = raw_fit(ours["training_set"])
    whole = raw_whole(home / "timed", end)
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--days",
            str(args.days),
            "--peak-entities",
            str(args.peak_entities),
            "--via",
            args.via,
        ],
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
    print(f"{'raw fit: xgboost.train, same matrix, params, early stop':<52}{raw['seconds']:>10.1f}")
    print(f"{'raw whole job: read, merge_asof, split, xgboost.train':<52}{whole['seconds']:>10.1f}")
    print(f"{'ours: training task (retrieval .. gate)':<52}{ours['seconds']:>10.1f}")
    for step, seconds in ours["steps"].items():
        print(f"{'  ' + step:<52}{seconds:>10.1f}")
    print(f"{'  of which the fit itself':<52}{ours['fit_seconds']:>10.1f}")
    print(
        f"ratio raw whole job / ours: {whole['seconds'] / ours['seconds']:.2f} (target >= 0.3; {whole['rows']:,} rows "
        f"joined); raw fit / ours: {raw['seconds'] / ours['seconds']:.2f}; share outside the fit: "
        f"{outside / ours['seconds']:.0%}"
    )
    print(
        f"peak memory of the training task on {peak['rows']:,} rows: {peak['peak_mb']:,.0f} MB (target well under "
        f"8 GB); it took {peak['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
