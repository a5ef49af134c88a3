"""ingest_interval against real databases: idempotent, atomic, and safe with bad input."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import BadInput
from pipelines.ingestion.ingest import QuarantinedPartition, ingest_interval, validation_record_path
from pipelines.simulation.churn import World
from pipelines.simulation.writer import write_simulation
from pipelines.stores import partitions

WORLD = World(start=dt.date(2025, 1, 1), customers=300, seed=5, label_delay_days=14)
DAY = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
END = DAY + dt.timedelta(days=1)


@pytest.fixture
def source(sqlite_source, churn) -> str:
    write_simulation(sqlite_source, churn, WORLD, 4)
    return sqlite_source


def _curated(dataset: str = "activity", key: str = "2025-01-02"):
    return partitions.partition_path(partitions.CURATED, "churn", dataset, key)


def test_ingest_writes_a_validated_partition_and_a_rerun_changes_nothing(source, churn):
    first = ingest_interval(source, churn, "activity", DAY, END, chunk_rows=100)
    path = _curated()
    assert first.path == path and not first.unchanged
    frame = partitions.read_partition(path)
    assert len(frame) == first.info.rows > 250
    assert frame["event_timestamp"].min() >= pd.Timestamp(DAY) and frame["event_timestamp"].max() < pd.Timestamp(END)
    assert str(frame["event_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert not frame.duplicated(["customer_id", "event_timestamp"]).any()
    stat = path.stat()

    second = ingest_interval(source, churn, "activity", DAY, END, chunk_rows=37)  # other chunking, same rows
    assert second.unchanged
    assert second.info.content_hash == first.info.content_hash
    assert path.stat().st_mtime_ns == stat.st_mtime_ns  # not even rewritten
    assert validation_record_path("churn", "activity", "2025-01-02").exists()


def test_an_empty_window_is_an_explicit_empty_partition(source, churn):
    result = ingest_interval(source, churn, "labels", DAY, END)  # labels arrive 14 days later
    assert result.info.empty and result.info.rows == 0
    assert partitions.read_info(result.path).empty
    assert partitions.read_partition(result.path).columns.tolist() == churn.source.datasets["labels"].column_names


def _set_on_the_day(url: str, assignment: str, customers: tuple[int, ...]) -> None:
    """``UPDATE ... SET <assignment>`` on these customers' activity rows of DAY."""
    ids = ", ".join(map(str, customers))
    _corrupt_source(
        url,
        f"UPDATE customer_activity SET {assignment} WHERE customer_id IN ({ids}) "
        "AND event_timestamp >= '2025-01-02' AND event_timestamp < '2025-01-03'",
    )


def _with_activity(churn, **changes):
    """The use case with its activity dataset changed (the config's models are frozen)."""
    datasets = {**churn.source.datasets, "activity": churn.source.datasets["activity"].model_copy(update=changes)}
    return churn.model_copy(update={"source": churn.source.model_copy(update={"datasets": datasets})})


def _corrupt_source(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def test_bad_rows_are_quarantined_and_what_was_curated_stays(source, churn):
    good = ingest_interval(source, churn, "activity", DAY, END)
    before = _curated().read_bytes()
    _corrupt_source(
        source,
        "UPDATE customer_activity SET monthly_charges = NULL, tenure_days = -3 "
        "WHERE customer_id <= 7 AND event_timestamp >= '2025-01-02' AND event_timestamp < '2025-01-03'",
    )
    with pytest.raises(QuarantinedPartition) as err:
        ingest_interval(source, churn, "activity", DAY, END)
    message = str(err.value)
    assert "expect_column_values_to_not_be_null(monthly_charges): 7 of" in message
    assert "expect_column_values_to_be_between(tenure_days): 7 of" in message
    assert _curated().read_bytes() == before  # nothing curated is lost or changed
    quarantined = partitions.partition_path(partitions.QUARANTINE, "churn", "activity", "2025-01-02")
    assert partitions.read_info(quarantined).status == "quarantined"
    assert len(partitions.read_partition(quarantined)) == good.info.rows


def test_wrong_types_in_the_source_are_quarantined_not_a_crash(source, churn):
    _corrupt_source(
        source,
        "UPDATE customer_activity SET plan = 42, data_usage_gb = 'lots' "
        "WHERE customer_id = 3 AND event_timestamp >= '2025-01-02' AND event_timestamp < '2025-01-03'",
    )
    with pytest.raises(QuarantinedPartition, match=r"data_usage_gb"):
        ingest_interval(source, churn, "activity", DAY, END)
    quarantined = partitions.partition_path(partitions.QUARANTINE, "churn", "activity", "2025-01-02")
    assert partitions.read_info(quarantined).rows > 0


def test_a_corrupt_partition_left_by_a_crash_is_rebuilt(source, churn):
    first = ingest_interval(source, churn, "activity", DAY, END)
    _curated().write_bytes(b"PAR1 torn")
    again = ingest_interval(source, churn, "activity", DAY, END)
    assert not again.unchanged
    assert partitions.read_info(_curated()).content_hash == first.info.content_hash


def test_a_crash_between_write_and_rename_leaves_the_old_partition_and_a_rerun_cleans_up(source, churn):
    first = ingest_interval(source, churn, "activity", DAY, END)
    leftover = _curated().with_name(f".{_curated().name}.tmp-0badf00d")
    leftover.write_bytes(b"PAR1 the new file, never renamed")
    assert partitions.read_info(_curated()).content_hash == first.info.content_hash
    _corrupt_source(source, "DELETE FROM customer_activity WHERE customer_id = 1")  # so the rerun really writes
    second = ingest_interval(source, churn, "activity", DAY, END)
    assert not second.unchanged and second.info.rows == first.info.rows - 1
    assert not leftover.exists()


def test_an_unreachable_source_raises_a_retryable_error(home, churn):
    with pytest.raises(sa.exc.OperationalError):
        ingest_interval("postgresql+psycopg2://nobody@127.0.0.1:1/none", churn, "activity", DAY, END)
    assert not _curated().exists()


def test_ingest_from_postgresql(home, churn, postgres_url):
    write_simulation(postgres_url, churn, WORLD, 3)
    result = ingest_interval(postgres_url, churn, "activity", DAY, END)
    sqlite_url = f"sqlite:///{home / 'other.db'}"
    write_simulation(sqlite_url, churn, WORLD, 3)
    from pipelines.ingestion.ingest import conform, read_interval

    dataset = churn.source.datasets["activity"]
    same = conform(read_interval(sqlite_url, dataset, DAY, END), dataset)
    assert result.info.content_hash == partitions.content_hash(same)  # one source, two databases, same partition


def test_a_table_in_a_schema_of_postgresql_is_read(home, churn, postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA crm"))
    engine.dispose()
    in_schema = _with_activity(churn, table="crm.customer_activity")
    write_simulation(postgres_url, in_schema, WORLD, 3)
    assert ingest_interval(postgres_url, in_schema, "activity", DAY, END).info.rows > 250


def test_a_column_added_to_the_source_is_quarantined_not_dropped(source, churn):
    before = ingest_interval(source, churn, "activity", DAY, END)
    _corrupt_source(source, "ALTER TABLE customer_activity ADD COLUMN promo_code TEXT")
    with pytest.raises(QuarantinedPartition, match=r"expect_table_columns_to_match_set\(table\).*promo_code"):
        ingest_interval(source, churn, "activity", DAY, END)
    assert partitions.read_info(_curated()).content_hash == before.info.content_hash


def test_a_column_dropped_from_the_source_is_quarantined(source, churn):
    _corrupt_source(source, "ALTER TABLE customer_activity DROP COLUMN call_minutes")
    with pytest.raises(QuarantinedPartition, match=r"call_minutes"):
        ingest_interval(source, churn, "activity", DAY, END)


def test_a_source_without_its_event_time_cannot_be_read_and_says_why(source, churn):
    from pipelines.errors import BadInput
    from pipelines.stores.source import SourceSchemaError

    _corrupt_source(source, "ALTER TABLE customer_activity RENAME COLUMN event_timestamp TO ts")
    with pytest.raises(SourceSchemaError, match=r"has no column\(s\) \['event_timestamp'"):
        ingest_interval(source, churn, "activity", DAY, END)
    assert issubclass(SourceSchemaError, BadInput)  # the task fails without retrying


def test_a_quarantine_records_its_reasons_and_is_resolved_by_a_later_good_run(source, churn):
    _corrupt_source(source, "UPDATE customer_activity SET plan = 'gold' WHERE customer_id = 4")
    with pytest.raises(QuarantinedPartition):
        ingest_interval(source, churn, "activity", DAY, END)
    quarantined = partitions.partition_path(partitions.QUARANTINE, "churn", "activity", "2025-01-02")
    info = partitions.read_info(quarantined)
    assert info.status == "quarantined"
    assert info.failures and info.failures[0].startswith("expect_column_values_to_be_in_set(plan)")
    assert partitions.list_partitions(partitions.QUARANTINE, "churn", "activity") == [quarantined]

    _corrupt_source(source, "UPDATE customer_activity SET plan = 'basic' WHERE customer_id = 4")
    ingest_interval(source, churn, "activity", DAY, END)
    assert not quarantined.exists()
    assert (quarantined.parent / "resolved" / quarantined.name).exists()  # kept, not lost
    assert partitions.list_partitions(partitions.QUARANTINE, "churn", "activity") == []


def test_an_interval_that_has_not_ended_is_refused_and_one_within_its_lateness_waits(source, churn):
    """Issue 17, defect 2: today's interval was published with a partial day (rows stamped in the future too)."""
    from pipelines.errors import BadInput, NotYet

    during = END - dt.timedelta(hours=5)
    with pytest.raises(BadInput, match=r"churn.activity .* has not ended yet \(it ends in 5:00:00"):
        ingest_interval(source, churn, "activity", DAY, END, now=during)
    assert not _curated().exists()

    late = _with_activity(churn, lateness_minutes=90)
    with pytest.raises(NotYet, match="until 90 minutes after its end") as waiting:
        ingest_interval(source, late, "activity", DAY, END, now=END + dt.timedelta(minutes=30))
    assert waiting.value.ready_at == END + dt.timedelta(minutes=90) and not _curated().exists()
    assert ingest_interval(source, late, "activity", DAY, END, now=END + dt.timedelta(minutes=90)).info.rows > 0


def test_an_empty_read_waits_for_late_rows_until_its_deadline_then_fails_curating_nothing(source, churn):
    """Issue 18: a day whose data has not arrived by a configured time raises a late-data alert (the
    alert itself: tests/e2e/test_alerts.py)."""
    from pipelines.errors import NotYet
    from pipelines.ingestion.ingest import LATE_DATA_RECHECK, LateData

    _corrupt_source(source, "DELETE FROM customer_activity WHERE event_timestamp >= '2025-01-02'")  # not loaded yet
    waiting = _with_activity(churn, late_after_hours=6)
    with pytest.raises(NotYet, match=r"no rows yet; expected by .*T06:00:00\+00:00 \(late_after_hours: 6\)") as early:
        ingest_interval(source, waiting, "activity", DAY, END, now=END + dt.timedelta(hours=1))
    assert early.value.ready_at == END + dt.timedelta(hours=1) + LATE_DATA_RECHECK and not _curated().exists()
    almost = END + dt.timedelta(hours=5, minutes=55)  # the last check is at the deadline, not after it
    with pytest.raises(NotYet) as last:
        ingest_interval(source, waiting, "activity", DAY, END, now=almost)
    assert last.value.ready_at == END + dt.timedelta(hours=6)
    with pytest.raises(LateData, match=r"no rows had arrived by .* nothing was curated; run this task again"):
        ingest_interval(source, waiting, "activity", DAY, END, now=END + dt.timedelta(hours=6))
    assert not _curated().exists()
    assert ingest_interval(source, churn, "activity", DAY, END).info.rows == 0  # without it: empty, at once


def test_a_read_that_would_empty_or_shrink_a_curated_partition_stops_unless_allowed(source, churn):
    """Issue 17, defect 5: a re-read of a day that came back empty replaced a curated partition, with warnings only."""
    from pipelines.ingestion.ingest import PartitionWouldShrink

    first = ingest_interval(source, churn, "activity", DAY, END)
    _corrupt_source(source, "DELETE FROM customer_activity WHERE event_timestamp >= '2025-01-02'")  # the day is gone
    with pytest.raises(PartitionWouldShrink, match=rf"new read has 0 rows, the curated partition {first.info.rows}"):
        ingest_interval(source, churn, "activity", DAY, END)
    assert partitions.read_info(_curated()).content_hash == first.info.content_hash  # nothing replaced

    replaced = ingest_interval(source, churn, "activity", DAY, END, allow_shrink=True)
    assert replaced.info.rows == 0
    kept = _curated().parent / "replaced" / f"2025-01-02.{first.info.content_hash[:12]}.parquet"
    assert len(partitions.read_partition(kept)) == first.info.rows  # the old partition stays recoverable
    assert partitions.list_partitions(partitions.CURATED, "churn", "activity") == [_curated()]


def test_a_small_drop_within_max_shrink_is_replaced_and_the_old_partition_kept(source, churn):
    first = ingest_interval(source, churn, "activity", DAY, END)
    _corrupt_source(source, "DELETE FROM customer_activity WHERE customer_id % 10 = 0")  # about a tenth of the rows
    second = ingest_interval(source, churn, "activity", DAY, END)
    assert 0 < second.info.rows < first.info.rows
    assert list((_curated().parent / "replaced").glob("2025-01-02.*.parquet"))


def test_text_that_is_not_utf8_is_quarantined_naming_the_column_not_a_crash(source, churn):
    """Issue 17, defect 4: invalid UTF-8 in a category crashed ingest with a raw sqlite3.OperationalError."""
    _set_on_the_day(source, "plan = CAST(X'62617369FF63' AS TEXT)", customers=(3, 4))
    with pytest.raises(QuarantinedPartition, match=r"column 'plan' has 2 values that are not valid UTF-8") as err:
        ingest_interval(source, churn, "activity", DAY, END)
    assert isinstance(err.value, BadInput)  # data: no retry can help
    quarantined = partitions.partition_path(partitions.QUARANTINE, "churn", "activity", "2025-01-02")
    rows = partitions.read_partition(quarantined)
    assert (rows["plan"] == "basi\ufffdc").sum() == 2  # kept, the undecodable bytes shown as U+FFFD
    assert not _curated().exists()


def test_a_string_in_a_numeric_column_is_counted_and_shown(source, churn):
    """Issue 17, defect 7: reported as "300 of 300 rows (e.g. [31.92, 48.65, 46.59])", valid values as examples."""
    _set_on_the_day(source, "monthly_charges = 'n/a'", customers=(3, 4))
    with pytest.raises(QuarantinedPartition) as err:
        ingest_interval(source, churn, "activity", DAY, END)
    message = str(err.value)
    assert re.search(r"column 'monthly_charges' has 2 of \d+ values that are not numbers \(e.g. 'n/a'\)", message)
    assert "expect_column_values_to_be_in_type_list(monthly_charges)" not in message  # its count was every row


def test_a_source_column_whose_type_changed_is_quarantined_naming_both_types(source, churn):
    """Issue 17, defect 7: a column whose type changed in the source gave a raw TypeError from the driver."""
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        ddl = conn.scalar(sa.text("SELECT sql FROM sqlite_master WHERE name = 'customer_activity'"))
        conn.execute(sa.text("ALTER TABLE customer_activity RENAME TO activity_before"))
        conn.execute(sa.text(ddl.replace("monthly_charges FLOAT", "monthly_charges DATETIME")))
        conn.execute(sa.text("INSERT INTO customer_activity SELECT * FROM activity_before"))
    engine.dispose()
    with pytest.raises(QuarantinedPartition, match="column 'monthly_charges' is DATETIME in the source table"):
        ingest_interval(source, churn, "activity", DAY, END)
