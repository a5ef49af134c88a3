"""Alerts, the part without Airflow: what one says, and the record of every delivery attempt.

Delivery is Airflow's HTTP notifier (``dags/dagkit/alerts.py``). Each attempt, sent or
not, is one JSON line in ``$MLOPS_HOME/alerts/<use case>.jsonl``: a receiver that was
down is counted there (and logged), never a failed run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines import settings


def payload(usecase: str, event: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of one alert."""
    return {"source": "mlops", "usecase": usecase, "event": event, "message": message, "details": details}


def log_path(usecase: str) -> Path:
    return settings.mlops_home() / "alerts" / f"{usecase}.jsonl"


def record(usecase: str, event: str, sent: bool, error: str | None = None, at: str | None = None) -> None:
    """Append one delivery attempt (a short line: appends of one line do not interleave)."""
    path = log_path(usecase)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event, "sent": sent, "error": error and error[:300], "at": at})
    with path.open("a") as out:
        out.write(line + "\n")


def counts(usecase: str) -> dict[str, Any]:
    """Alerts sent and failed so far, with the newest failure."""
    path = log_path(usecase)
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    failed = [x for x in lines if not x["sent"]]
    return {
        "sent": len(lines) - len(failed),
        "failed": len(failed),
        "last_failure": failed[-1] if failed else None,
    }
