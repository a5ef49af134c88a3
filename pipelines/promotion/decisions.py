"""The decision log on disk: one JSON record per promotion decision and rollback of a use case."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipelines import settings
from pipelines.config import UseCase
from pipelines.training import metrics


def decisions_dir(usecase: UseCase) -> Path:
    return decisions_dir_for(usecase.name)


def decisions_dir_for(usecase: str) -> Path:
    """``reports/<use case>/decisions/``: one JSON record per promotion decision and rollback."""
    return settings.reports_dir() / usecase / "decisions"


def write_record(usecase: UseCase, file_name: str, record: dict[str, Any]) -> Path:
    """Write one decision record atomically under ``reports/<use case>/decisions/``."""
    path = decisions_dir(usecase) / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metrics.json_safe(record), indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path
