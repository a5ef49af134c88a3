"""Benchmark: batch inference end to end against XGBoost's inplace_predict on the same matrix.

    .venv/bin/python bench/inference.py [--entities 1000000] [--large 4000000]

Writes one daily feature partition of ``entities`` customers (the 29 features of
``churn_daily``), registers an XGBoost model (fitted on random labels of 20,000
rows: the benchmark is about throughput) as the champion, then in one run:

* ours: ``score_interval``: the features of every customer as of the interval's end
  through the feature service (Feast point-in-time retrieval, in chunks), the
  signature check, scoring with the pinned pyfunc model, the warehouse rows
  (SQLite, one transaction) and the Parquet partition;
* raw: ``Booster.inplace_predict`` on the same float32 matrix, already in memory.

Prints rows/s of the scoring step (the pyfunc ``predict`` calls inside ours), of the
whole task and of the raw baseline, and their ratios; then the task's peak memory
for ``entities`` and for ``large`` customers, each in a fresh process.
State lives in ``$MLOPS_HOME/bench_inference`` and is rebuilt on each run.
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
from synthetic import ONE, START, write_feature_partitions  # noqa: E402


def prepare(home: Path, entities: int) -> None:
    """Feature partition, Feast registry, and a champion model in a fresh ``home``."""
    import mlflow
    import numpy as np
    import xgboost as xgb
    from mlflow.models import infer_signature

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.features.definitions import feast_objects
    from pipelines.stores import feature_store, mlflow_store
    from pipelines.training.dataset import model_features
    from pipelines.training.model import Fitted, ScoringModel

    usecase = get_usecase("churn")
    frame = write_feature_partitions(entities, 1)[0]
    feature_store.apply_if_changed(feature_store.get_store(), feast_objects(usecase))
    features = model_features(usecase)
    sample = frame[features].head(20_000).astype(np.float32)
    labels = np.random.default_rng(0).integers(0, 2, len(sample))
    booster = xgb.train({"tree_method": "hist", "max_depth": 6, "objective": "binary:logistic", "seed": 0},
                        xgb.DMatrix(sample.to_numpy(), label=labels), num_boost_round=200)  # fmt: skip
    model = ScoringModel(Fitted("xgboost", "binary", booster, best_iteration=199), features, 0.5)
    mlflow_store.configure()
    with mlflow.start_run(experiment_id=mlflow_store.experiment_id("churn")) as run:
        mlflow.set_tag("feature_service", "churn_v1")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=infer_signature(sample.head(5), model.predict(None,
            sample.head(5))), input_example=sample.head(5), pip_requirements=[]
        )  # fmt: skip
    version = mlflow_store.register_challenger(usecase, info.model_uri, run.info.run_id, {"threshold": "0.5"})
    mlflow_store.move_champion(mlflow_store.configure(), "churn", version, None)


def score(home: Path) -> dict:
    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.inference.batch import pin, score_interval

    usecase = get_usecase("churn")
    t0 = time.perf_counter()
    outcome = score_interval(usecase, pin(usecase), START, START + ONE, f"sqlite:///{home / 'warehouse.db'}", "bench")
    return outcome.summary() | {"wall": time.perf_counter() - t0, "peak_mb": peak_mb()}


def peak_mb() -> float:
    """This process's peak resident memory since its exec (VmHWM; ru_maxrss would also count the
    parent's pages at fork time)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def raw(home: Path) -> dict:
    """inplace_predict of the registered booster on the same matrix, in memory."""
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.features.definitions import FEATURES_ZONE
    from pipelines.stores import mlflow_store, partitions
    from pipelines.training.dataset import model_features

    usecase = get_usecase("churn")
    mlflow_store.configure()
    scoring = mlflow.pyfunc.load_model("models:/churn@champion").unwrap_python_model()
    key = partitions.partition_key(START, START + ONE)
    frame = pd.read_parquet(partitions.partition_path(FEATURES_ZONE, "churn", "activity", key))
    matrix = frame[model_features(usecase)].to_numpy(np.float32)
    t0 = time.perf_counter()
    scoring.fitted.estimator.inplace_predict(matrix, iteration_range=(0, 200))
    return {"seconds": time.perf_counter() - t0, "rows": len(matrix)}


def child(home: Path, what: str, n: int = 0) -> dict:
    """Each step in its own process: peaks are their own, and this one stays small."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--home", str(home), "--n", str(n)], capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=4_000_000)
    parser.add_argument("--child", choices=["prepare", "score", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "prepare":
        prepare(args.home, args.n)
        print("{}")
        return
    if args.child:
        print(json.dumps((score if args.child == "score" else raw)(args.home), default=str))
        return
    root = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench_inference"
    sizes = {}
    for n in (args.entities, args.large):
        t0 = time.perf_counter()
        child(root / str(n), "prepare", n)
        print(f"{n:,} customers prepared in {time.perf_counter() - t0:.0f}s", flush=True)
        sizes[n] = child(root / str(n), "score")
        print(f"  scored in {sizes[n]['wall']:.1f}s, peak {sizes[n]['peak_mb']:,.0f} MB", flush=True)
    base = child(root / str(args.entities), "raw")
    ours = sizes[args.entities]
    rows = ours["scored"]
    lines = [
        ("raw: XGBoost inplace_predict, matrix in memory", base["seconds"], base["rows"]),
        ("ours: scoring step (pyfunc predict, all chunks)", ours["scoring_seconds"], rows),
        ("ours: whole task (read features .. write DB + Parquet)", ours["wall"], rows),
    ]
    print(f"\n{'':<58}{'seconds':>10}{'rows/s':>12}")
    for label, seconds, n in lines:
        print(f"{label:<58}{seconds:>10.2f}{n / seconds:>12,.0f}")
    print(
        f"ratio scoring step / raw rows/s: {base['seconds'] / ours['scoring_seconds']:.2f} (target >= 0.5); "
        f"whole task / raw: {base['seconds'] / ours['wall']:.3f}"
    )
    small, large = sizes[args.entities]["peak_mb"], sizes[args.large]["peak_mb"]
    print(f"peak memory: {small:,.0f} MB for {args.entities:,} rows, {large:,.0f} MB for {args.large:,} rows: "
          f"+{(large / small - 1):.0%} (target < +20%)")  # fmt: skip


if __name__ == "__main__":
    main()
