"""Labels whose reference time carries a time of day give what the same labels keyed by day give.

Two copies of one user's source (tests/onboarding.py): in one a label's reference
time is midnight, in the other the moment of the reading within that day. Both
are ingested and featured through the pipeline functions the DAG tasks call;
the training sets, their split, the gate's decision and the monitor's join of
labels with served predictions must come out the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests import onboarding

DAYS = 10  # labels (4 days late) of reference days 0..5 are known at the end of day 9
END = onboarding.day(DAYS)


def _home(root: Path, times_of_day: bool, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A user's source of DAYS days, ingested and featured in its own state folder; returns its training set."""
    from pipelines.config import get_usecase
    from pipelines.features.build import build_feature_partition
    from pipelines.features.definitions import feast_objects
    from pipelines.ingestion.ingest import ingest_interval
    from pipelines.stores import feature_store
    from pipelines.training.dataset import build_training_data, split_by_time

    home = root / ("times_of_day" if times_of_day else "midnight")
    home.mkdir(parents=True)
    monkeypatch.setenv("MLOPS_HOME", str(home))
    url = f"sqlite:///{home / 'meters.db'}"
    onboarding.write_source(url, DAYS, times_of_day)
    usecase = get_usecase("meter_load")
    for i in range(DAYS):
        for dataset in usecase.source.datasets:
            ingest_interval(url, usecase, dataset, onboarding.day(i), onboarding.day(i + 1))
        build_feature_partition(usecase, onboarding.day(i), onboarding.day(i + 1))
    feature_store.apply_if_changed(feature_store.get_store(), feast_objects(usecase))
    data = build_training_data(usecase, END)
    split = split_by_time(data.frame, usecase.training, usecase.entity.name)
    return {"home": home, "usecase": usecase, "data": data, "split": split}


def _settings(root: Path, mp: pytest.MonkeyPatch) -> None:
    """The user's YAML (a short history: trained from its first day) and its derived suites."""
    mp.setenv("MLOPS_CONFIGS", str(root / "configs"))
    mp.setenv("MLOPS_EXPECTATIONS", str(root / "expectations"))  # derived, as `mlops init` does


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Both copies of the source, ingested and featured once for the module."""
    from pipelines.config import get_usecase
    from pipelines.validation.suites import write_missing_suites

    root = tmp_path_factory.mktemp("reference_times")
    (root / "configs").mkdir()
    raw = json.loads(json.dumps(onboarding.METERS))
    raw["training"]["warmup_days"] = 0
    (root / "configs" / "meter_load.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        _settings(root, mp)
        write_missing_suites(get_usecase("meter_load"))
        homes = {"midnight": _home(root, False, mp), "times_of_day": _home(root, True, mp)}
    return root, homes


@pytest.fixture
def both(built: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> dict:
    root, homes = built
    _settings(root, monkeypatch)
    return homes


def _use(home: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(home["home"]))


def test_the_training_set_and_its_split_count_days_not_timestamps(both):
    from pipelines.training.dataset import REFERENCE_DAY

    a, b = both["midnight"], both["times_of_day"]
    columns = [c for c in a["data"].frame.columns if c != "event_timestamp"]
    left = a["data"].frame[columns].sort_values(["meter_id", REFERENCE_DAY], ignore_index=True)
    right = b["data"].frame[columns].sort_values(["meter_id", REFERENCE_DAY], ignore_index=True)
    pd.testing.assert_frame_equal(left, right)
    assert a["split"].summary() == b["split"].summary()
    summary = b["split"].summary()
    assert len(summary["holdout"]["days"]) == 2 and summary["holdout"]["rows"] == 2 * onboarding.ENTITIES
    assert len(summary["validation"]["days"]) == 1 and len(summary["train"]["days"]) == 3


def test_the_gate_decides_the_same_on_both(both, monkeypatch):
    from pipelines.promotion.gate import gate
    from pipelines.stores import mlflow_store
    from pipelines.training.train import train_candidates

    records = []
    for name in ("midnight", "times_of_day"):
        home = both[name]
        _use(home, monkeypatch)
        outcome = train_candidates(home["usecase"], home["data"])
        best = outcome.best_result()
        version = mlflow_store.register_challenger(
            home["usecase"], best.model_uri, best.run_id, {"candidate": best.name}
        )
        records.append(gate(home["usecase"], version, home["split"].holdout))
    a, b = records
    assert a["decision"] == b["decision"] == "promoted" and a["holdout_rows"] == b["holdout_rows"] == 500
    assert a["challenger"]["metrics"] == pytest.approx(b["challenger"]["metrics"])
    assert [c["name"] for c in a["checks"]] == [c["name"] for c in b["checks"]]


def test_the_monitor_joins_labels_stamped_within_the_day_with_that_days_predictions(both, monkeypatch):
    from pipelines.inference.batch import DATASETS, PREDICTIONS_ZONE
    from pipelines.monitoring import data
    from pipelines.stores import partitions

    joined = []
    for name in ("midnight", "times_of_day"):
        home = both[name]
        _use(home, monkeypatch)
        usecase = home["usecase"]
        for i in range(DAYS):  # what batch inference would have served on each day (the same in both)
            served = pd.DataFrame(
                {
                    "entity_id": [f"meter_id_{n:06d}" for n in range(1, onboarding.ENTITIES + 1)],
                    "score": np.linspace(0, 1, onboarding.ENTITIES) + i,
                    "model_version": "1",
                }
            )
            start, end = onboarding.day(i), onboarding.day(i + 1)
            info = partitions.PartitionInfo.describe(served, usecase.name, DATASETS["champion"], start, end, "scored")
            key = partitions.partition_key(start, end)
            partitions.write_partition(
                partitions.partition_path(PREDICTIONS_ZONE, usecase.name, DATASETS["champion"], key), served, info
            )
        rows, start, end = data.matured(usecase, END, days=3)
        joined.append(rows.sort_values(["entity_id", "day"], ignore_index=True))
        assert start == onboarding.day(DAYS - 4 - 3) and end == onboarding.day(DAYS - 4)
    a, b = joined
    assert len(b) == 3 * onboarding.ENTITIES  # every served prediction of the matured days found its label
    pd.testing.assert_frame_equal(a, b)
    assert (b["day"].dt.tz is not None) and set(b["day"].dt.hour) == {0}
