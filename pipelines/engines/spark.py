"""The Spark engine (a use case's ``engine: spark``): one session per process, from the ``mlops_spark`` connection.

The connection's host (and port) is the master URL: ``local[2]``, ``spark://host:7077``, ``yarn`` or
``k8s://https://host:443``; its extra's ``conf`` mapping, and any ``spark.*`` key of the extra, is Spark
configuration. Tasks resolve the connection (``dagkit.spark_target``) and hand the target to the stage;
without one, ``$MLOPS_SPARK_MASTER`` names the master, else ``local[2]``. PySpark is an optional extra
(``uv sync --extra spark``) and needs Java 17 or newer: nothing here imports it at module level, so DAG
files and the local engine never pay for it.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import BadInput
from pipelines.settings import SPARK_CONN_ID

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
MASTER_ENV = "MLOPS_SPARK_MASTER"
MIN_JAVA = 17
FIX = "`uv sync --extra spark` (`make test` installs it)"

# Every session. UTC, as the intervals are. The curated partitions hold pandas' nanosecond timestamps,
# which Spark's Parquet reader refuses unless it reads them as integers (spark_build converts them back).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.ui.showConsoleProgress": "false",  # progress bars in task logs
}
# Local mode: one machine, not a cluster. No web UI port per task process, few shuffle partitions, and
# the driver on the loopback whatever the host name resolves to.
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
_MASTER = re.compile(r"^(local(\[(\d+|\*)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^/\s]+|yarn|k8s://\S+)$")


class SparkUnavailable(BadInput):
    """``engine: spark`` cannot run here: PySpark or Java is missing, or the master URL is wrong or unreachable."""


@dataclass(frozen=True)
class SparkTarget:
    """Where a session runs: the master URL, extra Spark configuration, and where both came from."""

    master: str = DEFAULT_MASTER
    conf: Mapping[str, str] = field(default_factory=dict)
    source: str = "the default"

    @property
    def local(self) -> bool:
        return self.master.startswith("local")


def target_from_connection(conn: Any) -> SparkTarget:
    """The target an Airflow connection describes (the Task SDK's and the metadata DB's alike).

    ``host`` is the master (``spark://`` is added to a bare host name), ``port`` is appended when set,
    and the extra's ``conf`` mapping and ``spark.*`` keys are Spark configuration.
    """
    host = (conn.host or "").strip()
    master = f"{host}:{conn.port}" if host and conn.port else host
    if master and "://" not in master and not master.startswith(("local", "yarn")):
        master = f"spark://{master}"
    extra = dict(conn.extra_dejson or {})
    conf = {str(k): str(v) for k, v in dict(extra.get("conf") or {}).items()}
    conf.update({k: str(v) for k, v in extra.items() if k.startswith("spark.")})
    return SparkTarget(master or DEFAULT_MASTER, conf, f"connection {SPARK_CONN_ID}")


def environment_target() -> SparkTarget:
    """The target when no connection is given: ``$MLOPS_SPARK_MASTER``, else ``local[2]``."""
    master = os.environ.get(MASTER_ENV, "").strip()
    return SparkTarget(master, {}, f"${MASTER_ENV}") if master else SparkTarget()


def check_target(target: SparkTarget) -> None:
    """Refuse what cannot work before a JVM is started for it.

    Raises:
        SparkUnavailable: PySpark or Java 17+ is missing, the master URL is not one, or a standalone
            master does not answer.
    """
    if not _MASTER.match(target.master):
        raise SparkUnavailable(
            f"'{target.master}' (from {target.source}) is not a Spark master URL: expected local[N], "
            "spark://host:7077, yarn or k8s://https://host:port (docs/how-to/spark.md)"
        )
    _require_pyspark()
    if target.master.startswith("spark://"):
        _check_reachable(target)
    _check_java()


_active: tuple[SparkTarget, Any] | None = None


def session(target: SparkTarget | None = None) -> Any:
    """This process's Spark session on ``target`` (default: :func:`environment_target`).

    Created on first use and kept for the process (a JVM takes seconds to start), stopped at exit or by
    :func:`stop`; asking for another target stops the current session first.

    Raises:
        SparkUnavailable: see :func:`check_target`.
    """
    global _active
    target = target or environment_target()
    _require_pyspark()
    if _active is not None and _active[0] == target and _active[1].sparkContext._jsc is not None:
        return _active[1]
    check_target(target)
    stop()
    from pyspark.sql import SparkSession

    logging.getLogger("py4j").setLevel(logging.WARNING)
    # The executors' Python (PySpark takes it from the environment when the context starts): the one the
    # configuration names, else in local mode this one, whose packages and project code the functions need.
    if target.conf.get("spark.pyspark.python"):
        os.environ["PYSPARK_PYTHON"] = target.conf["spark.pyspark.python"]
    elif target.local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(target.master).appName("mlops")
    for key, value in {**SESSION_CONF, **(LOCAL_CONF if target.local else {}), **target.conf}.items():
        builder = builder.config(key, value)
    log.info("starting a Spark session on %s (from %s)", target.master, target.source)
    spark = builder.getOrCreate()
    if _active is None:
        atexit.register(stop)
    _active = (target, spark)
    return spark


def stop() -> None:
    """Stop this process's session, if there is one (the next :func:`session` starts a new one)."""
    global _active
    if _active is not None:
        spark, _active = _active[1], None
        spark.stop()


def to_driver(frame: Any, chunk_rows: int) -> Iterator[Any]:
    """The rows of the Spark DataFrame ``frame`` on the driver, in order, at most ``chunk_rows`` at a time, as
    pandas frames converted from Arrow the way a Parquet partition read locally is.

    Each Arrow batch is serialized on the executors and fetched one partition at a time
    (``toLocalIterator``, the next partition computed meanwhile), so the driver holds about one partition
    and one chunk, never the whole result.
    """
    import pyarrow as pa

    def serialize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, batch.schema) as writer:
                    writer.write_batch(batch)
                yield pa.record_batch([pa.array([sink.getvalue().to_pybytes()], pa.binary())], names=["ipc"])

    pending: list[pa.Table] = []
    held = 0
    for row in frame.mapInArrow(serialize, "ipc binary").toLocalIterator(prefetchPartitions=True):
        pending.append(pa.ipc.open_stream(row.ipc).read_all())
        held += pending[-1].num_rows
        while held >= chunk_rows:
            table = pa.concat_tables(pending)
            yield table.slice(0, chunk_rows).to_pandas()
            pending, held = [table.slice(chunk_rows)], held - chunk_rows
    if held:
        yield pa.concat_tables(pending).to_pandas()


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(f"engine: spark needs PySpark, an optional extra of this project: {FIX}") from None


def _check_reachable(target: SparkTarget) -> None:
    """A standalone master that does not answer would make Spark retry for minutes: fail at once instead."""
    addresses = target.master.removeprefix("spark://").split(",")
    problems = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or address, int(port or 7077)), timeout=5).close()
            return
        except (OSError, ValueError) as exc:
            problems.append(f"{address}: {exc}")
    raise SparkUnavailable(
        f"the Spark master {target.master} (from {target.source}) does not answer ({'; '.join(problems)}): "
        f"start it, or fix the connection {SPARK_CONN_ID}"
    )


def _check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkUnavailable(
            f"engine: spark needs Java {MIN_JAVA} or newer (JAVA_HOME, or `java` on PATH); none was found. "
            f"Install a JDK (Debian: `apt-get install openjdk-{MIN_JAVA}-jre-headless`)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(found.group(1)) if found else 0
    if major == 1 and found and found.group(2):  # "1.8.0_392" is Java 8
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise SparkUnavailable(
            f"engine: spark needs Java {MIN_JAVA} or newer; {java} is "
            f"{found.group(0) if found else 'of an unknown version'}: point JAVA_HOME at a newer JDK"
        )
