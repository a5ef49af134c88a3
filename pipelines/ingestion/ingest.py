"""Ingest one data interval of one dataset: read, validate, publish or quarantine.

:func:`ingest_interval` is what the ingestion DAG's task calls. It is
idempotent: the same interval with the same source rows leaves the curated
partition untouched (same rows, same content hash, same file), and it never
changes what is curated when the new rows fail validation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines import settings
from pipelines.config import DatasetSpec, UseCase
from pipelines.errors import BadInput, NotYet
from pipelines.stores import partitions, source
from pipelines.stores.partitions import CURATED, QUARANTINE, CorruptPartition, PartitionInfo
from pipelines.validation.validate import ValidationOutcome, validate_partition, with_read_failures

log = logging.getLogger(__name__)

_PANDAS_TYPES = {
    "int": "int64",
    "float": "float64",
    "category": "string",
    "string": "string",
    "timestamp": "datetime64[ns, UTC]",
}
# What the source gives (and what is validated): naive UTC timestamps, text as objects.
_AS_READ = {**_PANDAS_TYPES, "timestamp": "datetime64[ns]", "category": "object", "string": "object"}


class QuarantinedPartition(BadInput):
    """The interval's rows failed a critical expectation and were quarantined."""


class LateData(BadInput):
    """No row of an interval has arrived ``late_after_hours`` after its end."""


LATE_DATA_RECHECK = dt.timedelta(minutes=15)  # how often an empty read is tried again before the deadline


def check_arrived(
    usecase: UseCase, dataset_name: str, start: dt.datetime, end: dt.datetime, rows: int, now: dt.datetime
) -> None:
    """With ``late_after_hours``, an interval read empty is not curated as empty: it is waited for.

    Raises:
        NotYet: no rows yet, the deadline ``end + late_after_hours`` is still ahead: read again later.
        LateData: no rows at the deadline.
    """
    hours = usecase.source.datasets[dataset_name].late_after_hours
    if rows or hours is None:
        return
    deadline = end + dt.timedelta(hours=hours)
    what = f"{usecase.name}.{dataset_name} [{start.isoformat()}, {end.isoformat()})"
    if now < deadline:
        raise NotYet(f"{what}: no rows yet; expected by {deadline.isoformat()} (late_after_hours: {hours:g})",
                     min(now + LATE_DATA_RECHECK, deadline))  # fmt: skip
    raise LateData(
        f"{what}: no rows had arrived by {deadline.isoformat()} ({hours:g} hours after the interval's end, "
        "late_after_hours): nothing was curated; run this task again once the source has them"
    )


class PartitionWouldShrink(BadInput):
    """A new read of an interval has far fewer rows than its curated partition (``max_shrink``)."""


def check_interval_over(
    usecase: UseCase, dataset_name: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> None:
    """Refuse an interval whose rows may not all be in the source yet, as of the wall clock ``now``.

    Raises:
        BadInput: the interval has not ended (a run of today, say): no row of it is curated.
        NotYet: it has ended, but rows may still arrive until ``end + lateness_minutes``.
    """
    lateness = dt.timedelta(minutes=usecase.source.datasets[dataset_name].lateness_minutes)
    what = f"{usecase.name}.{dataset_name} [{start.isoformat()}, {end.isoformat()})"
    if end > now:
        raise BadInput(
            f"{what} has not ended yet (it ends in {end - now}, at {end.isoformat()}): its rows are not all in "
            f"the source, and rows stamped after now ({now.isoformat()}) are never curated; run it after "
            f"{(end + lateness).isoformat()}"
        )
    if end + lateness > now:
        minutes = int(lateness.total_seconds() // 60)
        late = f"rows may still arrive until {minutes} minutes after its end (lateness_minutes)"
        raise NotYet(f"{what}: {late}", end + lateness)


@dataclass(frozen=True)
class IngestResult:
    info: PartitionInfo
    path: Path
    unchanged: bool
    validation: ValidationOutcome

    def summary(self) -> dict:
        """A small JSON-able summary (the task's return value, shown in the UI)."""
        return {
            "partition": self.info.key,
            "rows": self.info.rows,
            "empty": self.info.empty,
            "content_hash": self.info.content_hash,
            "unchanged": self.unchanged,
            "warnings": self.info.warnings,
            "path": str(self.path),
            "data_docs": self.validation.docs_page if self.validation else None,
        }


def read_interval(
    url: str, dataset: DatasetSpec, start: dt.datetime, end: dt.datetime, chunk_rows: int = 200_000
) -> pd.DataFrame:
    """All source rows of ``[start, end)``, read in chunks, timestamps as UTC."""
    return read_checked(url, dataset, start, end, chunk_rows)[0]


def read_checked(
    url: str, dataset: DatasetSpec, start: dt.datetime, end: dt.datetime, chunk_rows: int = 200_000
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of ``[start, end)``, and what only the read can see, by column: a source column of
    another type than declared, values of the wrong type, text that is not UTF-8.

    Text that is not UTF-8 fails a plain read (SQLite); the interval is then read again with
    each undecodable byte as U+FFFD, so that its rows can be quarantined, naming the columns.
    """
    try:
        frame, mismatched = _read(url, dataset, start, end, chunk_rows, lenient_text=False)
        undecodable = {}
    except sa.exc.OperationalError as exc:
        if not source.is_undecodable_text(exc):
            raise
        log.warning("%s: %s; reading it again with each undecodable byte as U+FFFD", dataset.table, exc.orig)
        frame, mismatched = _read(url, dataset, start, end, chunk_rows, lenient_text=True)
        undecodable = undecodable_text(frame, dataset)
    return frame, {**mistyped_values(frame, dataset), **mismatched, **undecodable}


def undecodable_text(frame: pd.DataFrame, dataset: DatasetSpec) -> dict[str, str]:
    """Text columns holding U+FFFD, the mark of text that was not valid UTF-8 in the source."""
    failures = {}
    for col in dataset.columns:
        if col.type in ("category", "string") and col.name in frame:
            values = frame[col.name].dropna().astype(str)
            bad = values[values.str.contains(source.UNDECODABLE, regex=False)]
            if len(bad):
                failures[col.name] = (
                    f"column '{col.name}' has {len(bad)} values that are not valid UTF-8 in the source "
                    f"(undecodable bytes shown as U+FFFD: {_examples(bad)})"
                )
    return failures


def mistyped_values(frame: pd.DataFrame, dataset: DatasetSpec) -> dict[str, str]:
    """Numeric columns holding values that are not numbers (a string in a float column), counted and shown.

    Only columns that did not read as numbers are looked at, so the usual read costs nothing.
    """
    failures = {}
    for col in dataset.columns:
        if col.type not in ("int", "float") or col.name not in frame or pd.api.types.is_numeric_dtype(frame[col.name]):
            continue
        values = frame[col.name].dropna()
        not_numbers = values[values.map(lambda v: not isinstance(v, int | float) or isinstance(v, bool))]
        if len(not_numbers):
            failures[col.name] = (
                f"column '{col.name}' has {len(not_numbers)} of {len(frame)} values that are not numbers "
                f"(e.g. {_examples(not_numbers)})"
            )
    return failures


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in pd.unique(values)[:3])


def _read(
    url: str, dataset: DatasetSpec, start: dt.datetime, end: dt.datetime, chunk_rows: int, lenient_text: bool
) -> tuple[pd.DataFrame, dict[str, str]]:
    engine = source.make_engine(url, lenient_text=lenient_text)
    try:
        table = source.source_table(engine, dataset)
        mismatched = source.type_mismatches(table, dataset)
        chunks = []
        rows = 0
        for chunk in source.read_window(engine, dataset, start, end, chunk_rows, table, as_stored=mismatched):
            chunks.append(chunk)
            rows += len(chunk)
            log.info("read %d rows of %s so far", rows, dataset.table)
    finally:
        engine.dispose()
    frame = pd.concat(chunks, ignore_index=True) if chunks else empty_frame(dataset)
    if not len(frame):
        frame = empty_frame(dataset)
    return as_naive_utc(frame, dataset), mismatched


def empty_frame(dataset: DatasetSpec) -> pd.DataFrame:
    """A zero-row frame with the dataset's declared columns and types."""
    return pd.DataFrame({c.name: pd.Series(dtype=_AS_READ[c.type]) for c in dataset.columns})


def as_naive_utc(frame: pd.DataFrame, dataset: DatasetSpec) -> pd.DataFrame:
    """Timestamps as naive UTC, the form they are validated in (GX cannot type-check aware ones).

    Columns that are not datetimes are left as they are, for validation to report.
    """
    frame = frame.copy()
    for col in dataset.columns:
        if col.type == "timestamp" and col.name in frame and isinstance(frame[col.name].dtype, pd.DatetimeTZDtype):
            frame[col.name] = frame[col.name].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def conform(frame: pd.DataFrame, dataset: DatasetSpec) -> pd.DataFrame:
    """Validated rows in their declared types, column order and key order (a canonical form)."""
    out = frame[dataset.column_names].copy()
    for col in dataset.columns:
        if col.type == "timestamp":
            out[col.name] = out[col.name].dt.tz_localize("UTC")
    out = out.astype({c.name: _PANDAS_TYPES[c.type] for c in dataset.columns})
    return out.sort_values(dataset.key, kind="stable", ignore_index=True)


def ingest_interval(
    url: str,
    usecase: UseCase,
    dataset_name: str,
    start: dt.datetime,
    end: dt.datetime,
    chunk_rows: int = 200_000,
    *,
    allow_shrink: bool = False,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Ingest ``[start, end)`` of one dataset into its curated partition.

    ``now`` is the wall clock (default: the current time), which only decides whether the
    interval may be read yet; ``allow_shrink`` lets a new read replace a curated partition
    with far fewer rows (the replaced file is kept under ``replaced/``).

    Raises:
        QuarantinedPartition: a critical expectation failed; the rows are in the
            quarantine zone and the message names every failure.
        PartitionWouldShrink: the new rows would shrink the curated partition beyond
            ``max_shrink`` (or empty it) and ``allow_shrink`` is off; nothing changed.
        BadInput: the interval has not ended. NotYet: it ended less than ``lateness_minutes`` ago, or
            (``late_after_hours``) it was read empty before its deadline.
        LateData: read empty after its ``late_after_hours`` deadline (nothing is curated).
        pipelines.stores.source.SourceSchemaError: the source cannot be read by interval.
        sqlalchemy.exc.OperationalError: the source cannot be reached (retryable).
    """
    now = now or dt.datetime.now(dt.UTC)
    check_interval_over(usecase, dataset_name, start, end, now)
    dataset = usecase.source.datasets[dataset_name]
    key = partitions.partition_key(start, end)
    log.info("ingesting %s.%s partition %s = [%s, %s)", usecase.name, dataset_name, key, start, end)
    frame, read_failures = read_checked(url, dataset, start, end, chunk_rows)
    check_arrived(usecase, dataset_name, start, end, len(frame), now)
    if frame.empty:
        log.warning(
            "%s.%s %s: the source has no rows in this interval; writing an empty partition",
            usecase.name,
            dataset_name,
            key,
        )

    # Two runs of the same interval (a manual run and a scheduled one, say) take turns.
    with partitions.partition_lock(usecase.name, dataset_name, key):
        return _validate_and_publish(usecase, dataset_name, frame, start, end, key, allow_shrink, read_failures)


def _validate_and_publish(
    usecase: UseCase,
    dataset_name: str,
    frame: pd.DataFrame,
    start: dt.datetime,
    end: dt.datetime,
    key: str,
    allow_shrink: bool = False,
    read_failures: Mapping[str, str] | None = None,
) -> IngestResult:
    outcome = validate_partition(usecase, dataset_name, frame, start, end, key)
    if read_failures:  # what only the read sees (types, the source's bytes), in place of GX's type checks
        outcome = with_read_failures(outcome, read_failures)
    _record_validation(usecase.name, dataset_name, key, outcome)
    for warning in outcome.warnings:
        log.warning("%s.%s %s: warning: %s", usecase.name, dataset_name, key, warning)

    def info(status: str, data: pd.DataFrame) -> PartitionInfo:
        return PartitionInfo.describe(
            data, usecase.name, dataset_name, start, end, status, outcome.warnings, outcome.failures
        )

    quarantined = partitions.partition_path(QUARANTINE, usecase.name, dataset_name, key)
    if not outcome.success:
        path = quarantined
        partitions.write_partition(path, frame, info("quarantined", frame))
        raise QuarantinedPartition(
            f"{usecase.name}.{dataset_name} partition {key} quarantined to {path}: " + "; ".join(outcome.failures)
        )

    curated = conform(frame, usecase.source.datasets[dataset_name])
    new = info("curated", curated)
    path = partitions.partition_path(CURATED, usecase.name, dataset_name, key)
    try:
        old = partitions.read_info(path)
    except CorruptPartition as exc:
        log.warning("%s; rebuilding it from the source", exc)
        old = None
    unchanged = old is not None and old.content_hash == new.content_hash and old.warnings == new.warnings
    if unchanged:
        log.info("%s: unchanged (%d rows, hash %s), nothing written", path, new.rows, new.content_hash[:12])
    else:
        if old is not None and new.rows < old.rows:
            _guard_shrink(usecase, dataset_name, key, old, new, allow_shrink)
            kept = partitions.keep_replaced(path, old)
            log.warning("%s: %d rows replace %d; the replaced partition is kept as %s", path, new.rows, old.rows, kept)
        partitions.write_partition(path, curated, new)
        log.info("%s: wrote %d rows (hash %s)", path, new.rows, new.content_hash[:12])
    if quarantined.exists():  # an earlier failure of this interval, now fixed: keep it, as resolved
        resolved = partitions.resolve_quarantine(quarantined)
        log.info("earlier quarantine of this interval is resolved; kept as %s", resolved)
    return IngestResult(info=new, path=path, unchanged=unchanged, validation=outcome)


def _guard_shrink(
    usecase: UseCase, dataset_name: str, key: str, old: PartitionInfo, new: PartitionInfo, allowed: bool
) -> None:
    """Stop a new read that would empty a curated partition or drop more than ``max_shrink`` of its rows."""
    limit = usecase.source.datasets[dataset_name].max_shrink
    drop = 1 - new.rows / old.rows if old.rows else 0.0
    if (new.rows == 0 and old.rows > 0) or drop > limit:
        message = (
            f"{usecase.name}.{dataset_name} partition {key}: the new read has {new.rows} rows, the curated "
            f"partition {old.rows} (a drop of {drop:.0%}, more than max_shrink {limit:.0%})"
        )
        if not allowed:
            raise PartitionWouldShrink(
                f"{message}; nothing was replaced. If the source really lost these rows, run the interval again "
                "with allow_shrink (a field of the ingest DAG's trigger form): the replaced partition is kept "
                "under replaced/."
            )
        log.warning("%s; replaced as the run allows it (allow_shrink)", message)


def validation_record_path(usecase: str, dataset: str, key: str) -> Path:
    return settings.reports_dir() / "validation" / usecase / dataset / f"{key}.json"


def _record_validation(usecase: str, dataset: str, key: str, outcome: ValidationOutcome) -> None:
    """Keep the validation outcome of every partition (atomically replaced on rerun)."""
    path = validation_record_path(usecase, dataset, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(outcome), indent=2, sort_keys=True, default=str))
    tmp.replace(path)
