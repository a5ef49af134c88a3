"""Partitioned Parquet files under ``$MLOPS_HOME/<zone>/<use case>/<dataset>/``.

One data interval is one file, ``<partition key>.parquet``, written to a
temporary name and renamed into place, so a reader sees the old file or the new
one, never a half-written one. What the pipeline knows about a partition (its
interval, row count, content hash, validation outcome) travels inside the file
as Parquet key-value metadata, so data and description cannot disagree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import settings
from pipelines.errors import CorruptState
from pipelines.locks import named_lock

if TYPE_CHECKING:
    import pandas as pd

CURATED = "curated"
QUARANTINE = "quarantine"
_META_KEY = b"mlops"
_TMP_MARK = ".tmp-"


class CorruptPartition(CorruptState):
    """A partition file that cannot be read; the message says how to rebuild it."""


@dataclass(frozen=True)
class PartitionInfo:
    """What is recorded about one partition."""

    usecase: str
    dataset: str
    key: str
    interval_start: str
    interval_end: str
    rows: int
    content_hash: str
    empty: bool
    status: str  # "curated" or "quarantined"
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # why a quarantined partition was refused
    definition: str = ""  # for derived partitions: fingerprint of the definitions that built them

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def interval(self) -> tuple[dt.datetime, dt.datetime]:
        """The partition's data interval ``[start, end)`` as aware datetimes."""
        return dt.datetime.fromisoformat(self.interval_start), dt.datetime.fromisoformat(self.interval_end)

    @classmethod
    def describe(
        cls,
        frame: pd.DataFrame,
        usecase: str,
        dataset: str,
        start: dt.datetime,
        end: dt.datetime,
        status: str,
        warnings: list[str] | None = None,
        failures: list[str] | None = None,
        definition: str = "",
    ) -> PartitionInfo:
        """The info of the partition of ``[start, end)`` holding ``frame``."""
        return cls(
            usecase=usecase,
            dataset=dataset,
            key=partition_key(start, end),
            interval_start=start.isoformat(),
            interval_end=end.isoformat(),
            rows=len(frame),
            content_hash=content_hash(frame),
            empty=frame.empty,
            status=status,
            warnings=list(warnings or []),
            failures=list(failures or []),
            definition=definition,
        )


# Rows per Parquet row group: readers that go a row group at a time hold at most this many rows.
ROW_GROUP_ROWS = 128 * 1024


def partition_key(start: dt.datetime, end: dt.datetime) -> str:
    """Name of the partition of ``[start, end)``: ``2025-01-03`` for a whole UTC day."""
    start_utc, end_utc = (t.astimezone(dt.UTC) if t.tzinfo else t for t in (start, end))
    if end_utc - start_utc == dt.timedelta(days=1) and start_utc.time() == dt.time(0):
        return start_utc.date().isoformat()
    return f"{start_utc:%Y%m%dT%H%M%S}_{end_utc:%Y%m%dT%H%M%S}"


def partition_path(zone: str, usecase: str, dataset: str, key: str) -> Path:
    return settings.data_dir(zone, usecase, dataset) / f"{key}.parquet"


def content_hash(frame: pd.DataFrame) -> str:
    """A hash of the rows' values and the column names, independent of the file's bytes."""
    import pandas as pd

    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_partition(path: Path, frame: pd.DataFrame, info: PartitionInfo) -> None:
    """Write ``frame`` with ``info`` to ``path`` atomically (temporary file, fsync, rename)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = _to_arrow(frame)
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = info.to_json().encode()
    table = table.replace_schema_metadata(metadata)
    tmp = _temporary_name(path, uuid.uuid4().hex[:8])
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _remove_stale_temporaries(path)


class ChunkedPartition:
    """A partition written chunk by chunk (memory bounded by one chunk), published atomically.

    ``add`` each chunk (same columns each time), then ``publish`` with the info
    fields that are not about content: rows and content hash are counted here,
    and equal what :meth:`PartitionInfo.describe` gives for the whole frame.
    Nothing is visible at ``path`` until ``publish``; ``discard`` drops the work.
    """

    def __init__(self, path: Path, empty: pd.DataFrame):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temporary_name(path, uuid.uuid4().hex[:8])
        self._empty = empty
        self._writer: Any = None  # opened by the first chunk: its types are the file's
        self._digest = hashlib.sha256(",".join(map(str, empty.columns)).encode())
        self.rows = 0

    def add(self, chunk: pd.DataFrame) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not len(chunk):
            return
        if self._writer is None:
            table = _to_arrow(chunk)
            self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
        else:
            table = pa.Table.from_pandas(chunk, schema=self._writer.schema, preserve_index=False)
        self._writer.write_table(table)
        self._digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
        self.rows += len(chunk)

    @property
    def content_hash(self) -> str:
        return self._digest.hexdigest()

    def publish(self, info: PartitionInfo) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:  # no rows: an empty file, typed like the empty frame
            self._writer = pq.ParquetWriter(self._tmp, _to_arrow(self._empty).schema, compression="zstd")
        self._writer.add_key_value_metadata({_META_KEY: info.to_json()})
        self._writer.close()
        with open(self._tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self._tmp, self.path)
        _remove_stale_temporaries(self.path)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        self._tmp.unlink(missing_ok=True)


def _to_arrow(frame: pd.DataFrame) -> Any:
    """Arrow table of ``frame``; columns of mixed Python types (bad input) are kept as text."""
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = frame.copy()
        for col in mixed.columns:
            if mixed[col].dtype == object:
                mixed[col] = mixed[col].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(mixed, preserve_index=False)


def _temporary_name(path: Path, tag: str) -> Path:
    """Hidden (leading dot), so readers of the whole folder, such as Arrow datasets, skip it."""
    return path.with_name(f".{path.name}{_TMP_MARK}{tag}")


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of this partition left by a crashed writer are garbage."""
    for stale in path.parent.glob(_temporary_name(path, "*").name):
        stale.unlink(missing_ok=True)


def read_info(path: Path) -> PartitionInfo | None:
    """The recorded info of the partition at ``path``, or None when there is no file."""
    import pyarrow.parquet as pq

    if not path.exists():
        return None
    try:
        meta = pq.read_schema(path).metadata or {}
        if _META_KEY not in meta:  # written chunk by chunk: the info is in the file's footer
            meta = pq.read_metadata(path).metadata or {}
        return PartitionInfo(**json.loads(meta[_META_KEY]))
    except Exception as exc:  # any unreadable file is reported the same way
        raise _corrupt(path, exc) from exc


def read_partition(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a partition's rows (only ``columns`` when given), with a clear error for a missing or corrupt file."""
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"partition {path} does not exist")
    try:
        return pd.read_parquet(path, columns=columns)
    except Exception as exc:
        raise _corrupt(path, exc) from exc


def read_columns(path: Path) -> list[str]:
    """The column names of the partition at ``path``, from its schema (no rows are read).

    Raises:
        CorruptPartition: the file cannot be read.
    """
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).names
    except Exception as exc:
        raise _corrupt(path, exc) from exc


def iter_chunks(path: Path, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A partition's rows (``columns`` only), at most ``chunk_rows`` at a time, in file order.

    Raises:
        FileNotFoundError: there is no partition at ``path``.
        CorruptPartition: the file cannot be read.
    """
    import pyarrow.parquet as pq

    if not path.exists():
        raise FileNotFoundError(f"partition {path} does not exist")
    try:
        # No pre-buffering, one row group at a time: memory follows the chunk and the row
        # group (partitions are written in row groups of ROW_GROUP_ROWS), not the file.
        with pq.ParquetFile(path, pre_buffer=False) as file:
            for group in range(file.num_row_groups):
                for batch in file.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=columns):
                    yield batch.to_pandas()
    except Exception as exc:
        raise _corrupt(path, exc) from exc


def _corrupt(path: Path, exc: Exception) -> CorruptPartition:
    return CorruptPartition(
        f"partition file {path} is corrupt ({type(exc).__name__}: {exc}). Delete it and rerun "
        f"the interval that wrote it (clear that task in the Airflow UI, or `airflow tasks clear`)."
    )


def partition_lock(usecase: str, dataset: str, key: str) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on one partition while it is validated and written."""
    return named_lock(usecase, dataset, key)


def resolve_quarantine(path: Path) -> Path:
    """Move a quarantined partition whose interval has since been curated to ``resolved/``."""
    target = path.parent / "resolved" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target


def keep_replaced(path: Path, info: PartitionInfo) -> Path:
    """Keep the partition at ``path`` (about to be replaced) as ``replaced/<key>.<hash>.parquet`` beside it,
    where no reader of the zone looks; returns where. A hard link where the filesystem allows, else a copy."""
    target = path.parent / "replaced" / f"{path.stem}.{info.content_hash[:12]}{path.suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return target


def list_infos(zone: str, usecase: str, dataset: str) -> list[tuple[Path, PartitionInfo]]:
    """Each partition file of a dataset in a zone with its recorded info, oldest key first."""
    out = []
    for path in list_partitions(zone, usecase, dataset):
        info = read_info(path)
        if info is not None:  # gone since it was listed
            out.append((path, info))
    return out


def list_partitions(zone: str, usecase: str, dataset: str) -> list[Path]:
    """Partition files of a dataset in a zone, oldest key first; temporaries and resolved ones are ignored."""
    folder = settings.data_dir(zone, usecase, dataset)
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob("*.parquet") if p.is_file())
