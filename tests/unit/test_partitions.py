"""Partition files: atomic writes, stable content hashes, clear errors for corrupt files."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.stores import partitions
from pipelines.stores.partitions import CorruptPartition, PartitionInfo


def _info(frame: pd.DataFrame, key: str = "2025-01-01") -> PartitionInfo:
    return PartitionInfo(
        usecase="churn",
        dataset="activity",
        key=key,
        interval_start="2025-01-01T00:00:00+00:00",
        interval_end="2025-01-02T00:00:00+00:00",
        rows=len(frame),
        content_hash=partitions.content_hash(frame),
        empty=frame.empty,
        status="curated",
    )


def test_partition_key_is_the_day_for_a_whole_utc_day_and_explicit_otherwise():
    day = dt.datetime(2025, 1, 3, tzinfo=dt.UTC)
    assert partitions.partition_key(day, day + dt.timedelta(days=1)) == "2025-01-03"
    assert partitions.partition_key(day, day + dt.timedelta(hours=6)) == "20250103T000000_20250103T060000"


def test_content_hash_depends_on_values_not_on_the_object():
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert partitions.content_hash(a) == partitions.content_hash(a.copy())
    assert partitions.content_hash(a) != partitions.content_hash(a.assign(x=[1, 3]))
    assert partitions.content_hash(a.iloc[:0]) != partitions.content_hash(a.iloc[:0].rename(columns={"x": "z"}))


def test_write_then_read_round_trips_rows_and_info(home):
    frame = pd.DataFrame({"customer_id": [1, 2], "monthly_charges": [10.5, 20.0]})
    path = partitions.partition_path(partitions.CURATED, "churn", "activity", "2025-01-01")
    partitions.write_partition(path, frame, _info(frame))
    pd.testing.assert_frame_equal(partitions.read_partition(path), frame)
    assert partitions.read_info(path) == _info(frame)
    assert partitions.list_partitions(partitions.CURATED, "churn", "activity") == [path]


def test_leftovers_of_a_crashed_writer_are_ignored_then_cleaned(home):
    frame = pd.DataFrame({"customer_id": [1]})
    path = partitions.partition_path(partitions.CURATED, "churn", "activity", "2025-01-01")
    path.parent.mkdir(parents=True)
    leftover = path.with_name(f".{path.name}.tmp-deadbeef")
    leftover.write_bytes(b"PAR1 half a file")  # a crash between write and rename
    assert partitions.list_partitions(partitions.CURATED, "churn", "activity") == []
    assert partitions.read_info(path) is None
    partitions.write_partition(path, frame, _info(frame))
    assert not leftover.exists()
    assert partitions.read_info(path).rows == 1


def test_a_corrupt_file_is_named_with_how_to_rebuild_it(home):
    path = partitions.partition_path(partitions.CURATED, "churn", "activity", "2025-01-01")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 truncated by a crash")
    with pytest.raises(CorruptPartition, match=r"2025-01-01.parquet is corrupt .*rerun the interval"):
        partitions.read_partition(path)
    with pytest.raises(CorruptPartition):
        partitions.read_info(path)
    with pytest.raises(CorruptPartition, match="is corrupt"):
        next(partitions.iter_chunks(path, ["customer_id"], 10))


def test_chunks_hold_at_most_chunk_rows_and_together_the_partition(home, monkeypatch):
    monkeypatch.setattr(partitions, "ROW_GROUP_ROWS", 40)  # three row groups: chunks never span two
    frame = pd.DataFrame({"customer_id": range(100), "monthly_charges": [i / 2 for i in range(100)], "x": 0})
    path = partitions.partition_path(partitions.CURATED, "churn", "activity", "2025-01-01")
    partitions.write_partition(path, frame, _info(frame))
    chunks = list(partitions.iter_chunks(path, ["customer_id", "monthly_charges"], chunk_rows=30))
    assert [len(c) for c in chunks] == [30, 10, 30, 10, 20]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), frame[["customer_id", "monthly_charges"]])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        next(partitions.iter_chunks(path.with_name("2025-01-02.parquet"), ["customer_id"], 10))
