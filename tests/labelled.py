"""The labelled history the training, monitoring and inference tests start from, built once per test run.

18 simulated days of churn, labels 7 days late, so the labels of 10 days are
known at LABELLED_END: curated data, feature partitions and the Feast registry
(no Data Docs, no MLflow state). Under pytest-xdist, the controller starts
``python -m tests.labelled <folder>`` as soon as the session starts, so that the
build overlaps the workers' first tests; a worker that needs the history before
it is done waits on the same file lock (and builds it itself if nobody did).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

LABELLED_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
LABELLED_DAYS = 18
LABELLED_END = LABELLED_START + dt.timedelta(days=LABELLED_DAYS)


def shared(folder: Path) -> Path:
    """The history in ``folder`` (its ``var``), built there under a file lock unless it already is."""
    from filelock import FileLock

    with FileLock(f"{folder}.lock"):
        if not (folder / "built").exists():
            shutil.rmtree(folder / "var", ignore_errors=True)  # what a stopped build left
            folder.mkdir(exist_ok=True)
            build(folder / "var")
            (folder / "built").touch()
    return folder / "var"


def build(root: Path) -> None:
    """Write the history into ``root`` (a new folder used as $MLOPS_HOME while it is built)."""
    from pipelines.config import get_usecase
    from pipelines.features.build import build_feature_partition
    from pipelines.features.definitions import feast_objects
    from pipelines.ingestion.ingest import ingest_interval
    from pipelines.simulation.churn import World
    from pipelines.simulation.writer import write_simulation
    from pipelines.stores import feature_store

    root.mkdir()
    saved = {k: os.environ.get(k) for k in ("MLOPS_HOME", "MLOPS_DATA_DOCS")}
    os.environ["MLOPS_HOME"] = str(root)
    os.environ["MLOPS_DATA_DOCS"] = "deferred"  # no test reads this history's Data Docs (28 s instead of 45 s)
    try:
        world = World(start=LABELLED_START.date(), customers=1200, seed=11, label_delay_days=7)
        usecase = get_usecase("churn")
        url = f"sqlite:///{root / 'source.db'}"
        write_simulation(url, usecase, world, LABELLED_DAYS)
        for i in range(LABELLED_DAYS):
            day = LABELLED_START + dt.timedelta(days=i)
            for dataset in ("activity", "labels"):
                ingest_interval(url, usecase, dataset, day, day + dt.timedelta(days=1))
            build_feature_partition(usecase, day, day + dt.timedelta(days=1))
        feature_store.apply_if_changed(feature_store.get_store(), feast_objects(usecase))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register(usecase, candidate: str, promote: bool) -> str:
    """Train ``candidate`` on the labelled history (in the current $MLOPS_HOME) and register it as the
    challenger; with ``promote``, force it through the gate to champion. Returns its version."""
    from pipelines.promotion.gate import gate
    from pipelines.stores import mlflow_store
    from pipelines.training.dataset import build_training_data, split_by_time
    from pipelines.training.train import train_candidates

    data = build_training_data(usecase, LABELLED_END)
    best = train_candidates(usecase, data, [candidate]).best_result()
    version = mlflow_store.register_challenger(usecase, best.model_uri, best.run_id, {"threshold": str(best.threshold)})
    if promote:
        gate(usecase, version, split_by_time(data.frame, usecase.training, usecase.entity.name).holdout, force=True)
    return version


if __name__ == "__main__":
    shared(Path(sys.argv[1]))
