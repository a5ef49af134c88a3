"""Feature partitions, a real Feast repo (apply, materialize, online and historical reads) and their correctness."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.features.build import MissingCuratedPartition, build_feature_partition
from pipelines.features.definitions import feast_objects, feature_view_name
from pipelines.features.serving import EVENT_TIMESTAMP, build_training_set, check_skew
from pipelines.ingestion.ingest import ingest_interval
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation
from pipelines.stores import feature_store, partitions
from tests.conftest import set_source_connection

WORLD = World(start=dt.date(2025, 1, 1), customers=150, seed=9, label_delay_days=3)
D = [dt.datetime(2025, 1, d, tzinfo=dt.UTC) for d in range(1, 11)]
ONE = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def curated_state(tmp_path_factory) -> Path:
    """10 curated days of the churn simulation, built once per module; tests get a copy (``curated``)."""
    from pipelines.config import get_usecase

    root = tmp_path_factory.mktemp("curated") / "var"
    root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(root))
        churn = get_usecase("churn")
        url = f"sqlite:///{root / 'source.db'}"
        write_simulation(url, churn, WORLD, 10)
        for day in D:
            ingest_interval(url, churn, "activity", day, day + ONE)
    return root


@pytest.fixture
def curated(curated_state, home, monkeypatch, churn):
    """A copy of the curated days in the test's home, its source as the mlops_source connection."""
    shutil.rmtree(home)
    shutil.copytree(curated_state, home)
    set_source_connection(monkeypatch, f"sqlite:///{home / 'source.db'}")
    return churn


@pytest.fixture
def store(curated):
    """The last 3 days' features built, applied and materialized in a fresh Feast state.

    (Built per test, not copied: Feast's registry records the feature partitions by
    absolute path, so a copied registry would differ from a fresh apply.)
    """
    store = feature_store.get_store()
    for day in D[-3:]:
        build_feature_partition(curated, day, day + ONE)
    feature_store.apply_if_changed(store, feast_objects(curated))
    for day in D[-3:]:
        feature_store.materialize_interval(store, feature_view_name(curated), day, day + ONE)
    return store


def test_feature_partitions_are_idempotent(curated):
    first = build_feature_partition(curated, D[5], D[5] + ONE)
    stat = first.path.stat()
    again = build_feature_partition(curated, D[5], D[5] + ONE)
    assert again.unchanged and again.info.content_hash == first.info.content_hash
    assert first.path.stat().st_mtime_ns == stat.st_mtime_ns
    frame = partitions.read_partition(first.path)
    assert (frame["feature_timestamp"] == pd.Timestamp(D[5] + ONE)).all()
    assert frame["active_days_14d"].max() == 6  # history of days 1..6 only


def test_a_missing_or_quarantined_interval_builds_nothing(curated):
    with pytest.raises(MissingCuratedPartition, match="never ingested"):
        build_feature_partition(curated, D[-1] + ONE, D[-1] + 2 * ONE)
    assert not partitions.list_partitions("features", "churn", "activity")


def test_apply_is_idempotent(store, curated):
    registry = feature_store.registry_path()
    before = registry.stat().st_mtime_ns
    assert feature_store.apply_if_changed(store, feast_objects(curated)) == []
    assert registry.stat().st_mtime_ns == before


def test_online_equals_offline_for_active_entities(store, curated):
    ids = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-10"))[
        "customer_id"
    ].tolist()[:25]
    assert check_skew(store, curated, ids, D[-1] + ONE) == 25


def test_point_in_time_join_uses_no_later_value_and_no_expired_one(store, curated):
    day9 = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-09"))
    day10 = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-10"))
    both = sorted(set(day9["customer_id"]) & set(day10["customer_id"]))[:5]
    rows = pd.DataFrame(
        {
            "customer_id": both + both + [both[0]],
            EVENT_TIMESTAMP: [pd.Timestamp(D[-1])] * len(both)  # end of day 9, just before day 10's rows
            + [pd.Timestamp(D[-1] + ONE)] * len(both)
            + [pd.Timestamp(D[-1] + dt.timedelta(days=60))],  # far beyond the TTL
        }
    ).astype({EVENT_TIMESTAMP: "datetime64[ns, UTC]"})
    result = build_training_set(store, curated, rows)
    got = result.frame.set_index([EVENT_TIMESTAMP, "customer_id"])["monthly_charges_latest"]
    for c in both:
        expected9 = day9.set_index("customer_id").at[c, "monthly_charges_latest"]
        expected10 = day10.set_index("customer_id").at[c, "monthly_charges_latest"]
        assert got[(pd.Timestamp(D[-1]), c)] == np.float32(expected9)  # day 10's value is stamped later: not used
        assert got[(pd.Timestamp(D[-1] + ONE), c)] == np.float32(expected10)  # (training sets hold float32)
    assert len(result.missing) == 1  # the row beyond the TTL is reported, not silently dropped
    assert result.missing.iloc[0]["customer_id"] == both[0]


def test_the_join_over_partitions_gives_what_feasts_retrieval_gives(store, curated):
    """The training set's fast path (merge_asof over the partitions) against Feast's own offline
    retrieval, on rows at, between, before, within the TTL after and long after the stamps."""
    usecase = curated
    ttl = dt.timedelta(days=usecase.features.ttl_days)
    day8 = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-08"))
    ids = sorted(set(day8["customer_id"]))
    times = [D[-3], D[-3] + ONE, D[-2] + dt.timedelta(hours=5), D[-1] + ONE, D[-1] + 2 * ONE, D[-1] + ONE + ttl,
             D[-1] + ONE + ttl + dt.timedelta(seconds=1), D[-1] + 40 * ONE]  # fmt: skip
    rows = pd.DataFrame(
        {
            "customer_id": [c for c in [*ids, 987654] for _ in times],
            EVENT_TIMESTAMP: [pd.Timestamp(t) for _ in [*ids, 987654] for t in times],
            "churned": 0,
        }
    ).astype({EVENT_TIMESTAMP: "datetime64[ns, UTC]"})
    fast = build_training_set(store, usecase, rows)
    feast = build_training_set(store, usecase, rows, via="feast")
    assert len(fast.frame) > len(ids) and len(fast.missing) > len(times)
    features = [c for c in feast.frame.columns if c not in ("customer_id", EVENT_TIMESTAMP, "churned")]
    pd.testing.assert_frame_equal(  # the fast path gives float32, what training sets hold
        fast.frame, feast.frame.astype({name: "float32" for name in features}), check_dtype=True
    )
    pd.testing.assert_frame_equal(fast.missing, feast.missing)


def test_unknown_entities_are_reported_not_a_crash(store, curated):
    from pipelines.features.serving import read_online

    known = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-10"))
    first = int(known["customer_id"].iloc[0])
    frame, unknown = read_online(store, curated, [first, 987654], D[-1] + ONE)
    assert unknown == [987654]
    assert frame.set_index("customer_id").loc[first].notna().all()


def test_definitions_that_no_longer_match_the_partitions_say_which_columns(curated):
    from pipelines.features.build import DefinitionMismatch

    renamed = curated.model_copy(update={"features": curated.features.model_copy(update={"latest": ["tenure_months"]})})
    with pytest.raises(DefinitionMismatch, match=r"need columns \['tenure_months'\]"):
        build_feature_partition(renamed, D[5], D[5] + ONE)


@pytest.mark.parametrize("which", ["registry", "online"])
def test_a_corrupt_feast_file_names_itself_and_the_rebuild_command(store, curated, which):
    path = feature_store.registry_path() if which == "registry" else feature_store.online_store_path()
    path.write_bytes(b"this is not a database")
    with pytest.raises(feature_store.FeatureStoreCorrupt) as err:
        fresh = feature_store.get_store()
        feature_store.apply_if_changed(fresh, feast_objects(curated))
        feature_store.materialize_interval(fresh, feature_view_name(curated), D[-1], D[-1] + ONE)
    assert str(path) in str(err.value) and "mlops features rebuild" in str(err.value)

    from pipelines.features.materialize import rebuild

    assert rebuild(curated) == 3  # the three feature partitions, replayed
    ids = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-10"))[
        "customer_id"
    ].tolist()[:5]
    assert check_skew(feature_store.get_store(), curated, ids, D[-1] + ONE) == 5


def test_an_open_quarantine_blocks_the_build_even_with_an_older_curated_file(curated):
    path = partitions.partition_path("quarantine", "churn", "activity", "2025-01-06")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"quarantined rows")
    with pytest.raises(MissingCuratedPartition, match="open quarantine"):
        build_feature_partition(curated, D[5], D[5] + ONE)


def test_online_values_older_than_the_ttl_are_served_as_missing(store, curated):
    from pipelines.features.serving import read_online

    known = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-10"))
    first = int(known["customer_id"].iloc[0])
    _, unknown = read_online(store, curated, [first], D[-1] + ONE + dt.timedelta(days=curated.features.ttl_days + 1))
    assert unknown == [first]  # as the point-in-time join would say


def test_a_rerun_of_a_day_also_rebuilds_the_later_days_whose_windows_contain_it(store, curated):
    from pipelines.features.build import with_dependents

    days = with_dependents(curated, [(D[7], D[7] + ONE)])
    assert days == [(d, d + ONE) for d in D[7:]]  # days 8, 9 and 10 (the last two have day 8 in their windows)
    assert with_dependents(curated, [(D[-1], D[-1] + ONE)]) == [(D[-1], D[-1] + ONE)]


@pytest.mark.parametrize("which", ["registry", "online"])
def test_corrupt_feast_files_on_the_read_paths_name_themselves(store, curated, which):
    from pipelines.features.serving import read_online

    path = feature_store.registry_path() if which == "registry" else feature_store.online_store_path()
    path.write_bytes(b"this is not a database")
    with pytest.raises(feature_store.FeatureStoreCorrupt, match="mlops features rebuild") as err:
        read_online(feature_store.get_store(), curated, [1], D[-1] + ONE)
    assert str(path) in str(err.value)


def test_a_feature_added_to_the_config_asks_for_a_rebuild_then_works(store, curated):
    from pipelines.features.build import DefinitionMismatch
    from pipelines.features.materialize import materialize_intervals, rebuild

    wider = curated.model_copy(update={"features": curated.features.model_copy(update={"windows_days": [7, 14, 30]})})
    with pytest.raises(DefinitionMismatch, match="run `mlops features rebuild`"):
        materialize_intervals(wider, [(D[-1], D[-1] + ONE)])
    assert rebuild(wider) == 3
    frame = partitions.read_partition(partitions.partition_path("features", "churn", "activity", "2025-01-10"))
    assert "data_usage_gb_mean_14d" in frame.columns
    ids = frame["customer_id"].tolist()[:5]
    assert check_skew(feature_store.get_store(), wider, ids, D[-1] + ONE) == 5


def test_the_batched_online_store_holds_what_feasts_own_store_writes(store, curated, tmp_path):
    """The same days materialized by Feast's own SQLite store: the same rows, byte for byte."""
    import sqlite3

    import yaml
    from feast import FeatureStore

    from pipelines.stores.feast_sqlite import TYPE

    assert store.config.online_store.type == TYPE
    repo = tmp_path / "repo"
    shutil.copytree(feature_store.repo_dir(), repo)
    settings = yaml.safe_load((repo / "feature_store.yaml").read_text())
    settings["online_store"] = {"type": "sqlite", "path": str(tmp_path / "feast_own.db")}
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(settings))
    own = FeatureStore(repo_path=str(repo))
    view = own.get_feature_view(feature_view_name(curated))
    own._get_provider().online_store.update(own.config, [], [view], [], [], partial=False)  # its tables
    for day in D[-3:]:
        feature_store.materialize_interval(own, view.name, day, day + ONE)

    def rows(path: Path) -> list[tuple]:
        with sqlite3.connect(path) as conn:
            (table,) = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return conn.execute(f'SELECT * FROM "{table}" ORDER BY entity_key, feature_name').fetchall()

    batched, feasts = rows(feature_store.online_store_path()), rows(tmp_path / "feast_own.db")
    entities = {row[0] for row in feasts}  # the customers active in those days (a churned one is gone)
    assert 140 <= len(entities) <= 150 and len(batched) == len(entities) * len(view.features) and batched == feasts
