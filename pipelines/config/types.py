"""The vocabulary of use-case files: column types, metrics, candidate kinds, the strict base model."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

ColumnType = Literal["int", "float", "category", "string", "timestamp"]
Engine = Literal["local", "spark"]  # where the heavy data steps run (pipelines/engines)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# A source table (or view), optionally in a schema: plain SQL identifiers, nothing to quote or inject.
TABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class ConfigError(ValueError):
    """A use-case file that cannot be loaded; the message lists every problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Aggregation = Literal["mean", "sum", "max", "min"]


ClassificationMetric = Literal["roc_auc", "pr_auc", "f1", "neg_log_loss", "neg_brier"]
RegressionMetric = Literal["neg_rmse", "neg_mae", "r2"]
CANDIDATE_KINDS = {"binary": ("logistic", "xgboost"), "regression": ("ridge", "xgboost")}


def cron_period(expr: str) -> dt.timedelta:
    """The period of a cron expression that ticks at a fixed rate; ValueError otherwise."""
    from croniter import croniter

    if not croniter.is_valid(expr):
        raise ValueError(f"'{expr}' is not a valid cron expression")
    ticks = croniter(expr, dt.datetime(2025, 1, 1)).all_next(dt.datetime)
    times = [next(ticks) for _ in range(60)]
    gaps = {b - a for a, b in itertools.pairwise(times)}
    if len(gaps) != 1:
        raise ValueError(f"'{expr}' does not tick at a fixed period, so its data intervals would differ in length")
    return gaps.pop()
