"""Task logs of in-process runs, written where the Airflow UI reads them.

``DAG.test`` runs each task in the calling process and writes no task log file:
the UI (``make ui`` on the demo's state) said "Log file not found on worker" for
every demo task. While a task runs under :mod:`mlops.inprocess`, an Airflow
listener (the public ``on_task_instance_*`` hooks, called by the task runner in
process as on a worker) sends every log record to
``<base_log_folder>/<log_filename_template>``, the file Airflow's log reader
opens for that try, as JSON lines with the fields Airflow's own task logs have
(``timestamp``, ``level``, ``event``, ``logger``), so the UI shows levels and
times as it does for a worker's log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

_LISTENER: _TaskLogListener | None = None


class _TryLog:
    """The open log file of one try: JSON lines in the shape of a worker's task log."""

    def __init__(self, path: Path):
        self.path = path
        self.stream = open(path, "a", encoding="utf-8")  # a retry of the same try appends, as a worker does

    def write(self, event: str, level: str, logger: str | None, timestamp: str | None = None, exc: Any = None):
        if exc:
            event = f"{event}\n" + "".join(traceback.format_exception(*exc)).rstrip()
        line = {
            "timestamp": timestamp or dt.datetime.now(dt.UTC).isoformat(),
            "level": level,
            "event": event,
            "logger": logger,
        }
        self.stream.write(json.dumps(line, default=str) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


class _StdlibRecords(logging.Handler):
    """The records of the standard ``logging`` loggers (the pipelines', the libraries')."""

    def __init__(self, target: _TryLog):
        super().__init__(level=logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat()
            exc = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
            self.target.write(record.getMessage(), record.levelname.lower(), record.name, stamp, exc)
        except Exception:  # a log line must never fail the task
            self.handleError(record)


def _structlog_tee(logger: Any, method_name: str, event_dict: dict) -> dict:
    """A structlog processor: the events of Airflow's own loggers (the task runner's) also go to the try's log."""
    target = _LISTENER.current if _LISTENER is not None else None
    if target is not None:
        with contextlib.suppress(Exception):  # a log line must never fail the task
            exc = event_dict.get("exc_info")
            if exc is True:
                exc = sys.exc_info()
            name = event_dict.get("logger") or event_dict.get("logger_name") or getattr(logger, "name", None)
            stamp = event_dict.get("timestamp")
            level = str(event_dict.get("level") or method_name)
            target.write(str(event_dict.get("event")), level, name, stamp, exc if exc and exc[0] else None)
    return event_dict


def log_path(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> Path:
    """The file Airflow's log reader opens for this try (``[logging] base_log_folder``, ``log_filename_template``)."""
    import jinja2
    from airflow.configuration import conf

    class _TI:  # what the template reads of a task instance
        pass

    ti = _TI()
    ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number = dag_id, run_id, task_id, map_index, try_number
    template = conf.get("logging", "log_filename_template")
    relative = jinja2.Template(template).render(ti=ti, try_number=try_number)
    return Path(conf.get("logging", "base_log_folder")) / relative


class _TaskLogListener:
    """Opens a try's log file when the task starts running and closes it when the task ends."""

    def __init__(self) -> None:
        self.current: _TryLog | None = None
        self.handler: _StdlibRecords | None = None
        self.root_level = logging.WARNING

    def _open(self, ti: Any) -> None:
        self._close()
        path = log_path(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, getattr(ti, "map_index", -1))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.current = _TryLog(path)
        self.handler = _StdlibRecords(self.current)
        root = logging.getLogger()
        # The in-process runs keep the terminal at warnings (the console handler's own level);
        # the try's log gets the pipelines' progress too.
        self.root_level = root.level
        root.setLevel(min(root.level or logging.WARNING, logging.INFO))
        root.addHandler(self.handler)
        self.current.write(
            f"{ti.task_id}, try {ti.try_number}, run {ti.run_id}: running in process {os.getpid()} "
            "(an in-process run of mlops demo / mlops replay)", "info", __name__,
        )  # fmt: skip

    def _close(self) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            logging.getLogger().setLevel(self.root_level)
            self.handler = None
        if self.current is not None:
            self.current.close()
            self.current = None

    # The hook implementations (pluggy matches them by name and argument names).
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self._open(task_instance)

    def _end(self, state: str, level: str = "info") -> None:
        if self.current is not None:
            self.current.write(f"task ended: {state}", level, __name__)
        self._close()

    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._end("success")

    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self._end(f"failed ({type(error).__name__}: {error})" if error else "failed", "error")

    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._end("skipped")


def _mark_hooks(cls: type) -> type:
    from airflow.listeners import hookimpl

    for name in ("running", "success", "failed", "skipped"):
        hookimpl(getattr(cls, f"on_task_instance_{name}"))
    return cls


def enable() -> None:
    """Write the task logs of every task this process runs from now on (call before each run: idempotent)."""
    global _LISTENER
    import structlog
    from airflow.sdk.listener import get_listener_manager

    if _LISTENER is None:
        _LISTENER = _mark_hooks(_TaskLogListener)()
    get_listener_manager().add_listener(_LISTENER)
    # Airflow's structlog configuration ends in its renderer: read the events just before it
    # (again if something configured logging anew since).
    processors = list(structlog.get_config()["processors"])
    if _structlog_tee not in processors:
        structlog.configure(processors=[*processors[:-1], _structlog_tee, processors[-1]])
