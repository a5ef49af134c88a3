"""Benchmark: the Spark engine (``engine: spark``, local mode) against the local engine, on one interval.

    .venv/bin/python bench/spark.py [--entities 100000] [--master 'local[2]']

Needs the extra and Java 17 (``uv sync --extra spark``; ``make test`` installs it). Writes 15 days of
curated churn activity for ``entities`` customers (each active every day, values at random, straight to
the curated zone: no simulation, no ingestion), then, for the last day:

* features: the partition built by each engine from the 14-day history window (Spark: a first build
  that includes starting the session, then a warm one), and whether the two are the same file content;
* scores: a logistic model fitted on random labels and registered as champion, then the interval scored
  by each engine (with the top 3 reasons), first and warm; the largest difference between the scores.

State lives in ``$MLOPS_HOME/bench_spark`` and is rebuilt on each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from synthetic import ONE, START, write_activity_partitions  # noqa: E402

DAYS = 15


def register_champion(features) -> None:
    """A logistic model on the built features (random labels) as the champion of ``churn``."""
    import numpy as np

    from pipelines.config import CandidateSpec, get_usecase
    from pipelines.stores import mlflow_store
    from pipelines.training.candidates import fit
    from pipelines.training.dataset import model_features
    from pipelines.training.model import ScoringModel
    from pipelines.training.train import MODEL_ARTIFACT

    usecase = get_usecase("churn")
    names = model_features(usecase)
    x = features[names].head(20_000).to_numpy(np.float32)
    y = np.random.default_rng(0).integers(0, 2, len(x))
    fitted, _ = fit(CandidateSpec(kind="logistic"), "binary", 0, x, y, x, y)
    experiment = mlflow_store.experiment_id("churn")
    with mlflow_store.start_run(experiment, "bench_spark", {"feature_service": "churn_v1"}) as run:
        uri = mlflow_store.log_model(
            MODEL_ARTIFACT, ScoringModel(fitted, names, 0.5), features[names].head(5).astype(np.float32), []
        )
    version = mlflow_store.register_challenger(usecase, uri, run.info.run_id, {"threshold": "0.5"})
    mlflow_store.move_champion(mlflow_store.configure(), "churn", version, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    home = Path(os.environ.get("MLOPS_HOME", REPO / "var")).resolve() / "bench_spark"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["MLOPS_HOME"] = str(home)

    from pipelines.config import get_usecase
    from pipelines.engines import spark as engine
    from pipelines.features.build import build_feature_partition
    from pipelines.features.definitions import feast_objects
    from pipelines.inference.batch import pin, score_interval
    from pipelines.stores import feature_store, partitions, warehouse

    local = get_usecase("churn")
    on_spark = local.model_copy(update={"engine": "spark"})
    target = engine.SparkTarget(args.master, {}, "--master")
    write_activity_partitions(args.entities, DAYS)
    day = START + (DAYS - 1) * ONE
    path = partitions.partition_path("features", "churn", "activity", partitions.partition_key(day, day + ONE))

    def timed(what, call):
        t0 = time.perf_counter()
        out = call()
        print(f"{what:45s} {time.perf_counter() - t0:7.2f} s")
        return out

    built = timed("features, local", lambda: build_feature_partition(local, day, day + ONE))
    path.unlink()
    timed(
        "features, spark (with the session's start)", lambda: build_feature_partition(on_spark, day, day + ONE, target)
    )
    path.unlink()
    again = timed("features, spark (warm)", lambda: build_feature_partition(on_spark, day, day + ONE, target))
    print(f"same partition content: {again.info.content_hash == built.info.content_hash} ({built.info.rows} rows)")

    feature_store.apply_if_changed(feature_store.get_store(), feast_objects(local))
    register_champion(partitions.read_partition(path))
    url = f"sqlite:///{home / 'warehouse.db'}"
    champion = pin(local)
    scored = {}
    for name, usecase in (("local", local), ("spark (first)", on_spark), ("spark (warm)", on_spark)):
        outcome = timed(
            f"scores, {name}", lambda u=usecase: score_interval(u, champion, day, day + ONE, url, "bench", spark=target)
        )
        scored[name] = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", day + ONE).set_index("entity_id")
        print(f"  of which scoring {outcome.scoring_seconds:.2f} s, reasons {outcome.explain_seconds:.2f} s")
    difference = (scored["local"]["score"] - scored["spark (warm)"]["score"]).abs().max()
    print(f"largest score difference: {difference:.2e} over {len(scored['local'])} rows")
    engine.stop()


if __name__ == "__main__":
    main()
