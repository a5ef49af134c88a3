"""The live metric: how the served predictions did once their labels matured, per version and overall.

Each model version that served a matured day is measured on its own rows with
the gate's metric functions; the night's live metric is their row-weighted mean,
against the same weighting of those versions' holdout figures (from their
promotion records). Versions not trained by this pipeline are reported, not weighed.
A challenger scored in the shadow is compared with the champion on the same matured rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from pipelines.config import UseCase
from pipelines.monitoring import data
from pipelines.training import metrics


def live_metrics(usecase: UseCase, frame: pd.DataFrame, thresholds: dict[str, float | None]) -> dict[str, dict]:
    """The use case's metrics per model version on matured rows (the same functions as the gate's),
    with the version's ``rows`` and its ``holdout`` figure of the primary metric (from its promotion record)."""
    out = {}
    for version, rows in frame.groupby("model_version"):
        version = str(version)
        y, scores = rows[data.TARGET].to_numpy(), rows[data.SCORE].to_numpy()
        values = metrics.metrics_for(usecase.task, y, scores, thresholds.get(version))
        out[version] = metrics.json_safe(values | {"rows": len(rows), "holdout": _holdout_metric(usecase, version)})
    return out


def _holdout_metric(usecase: UseCase, version: str) -> float | None:
    try:
        record = data.decision_record(usecase, version)
    except data.NoReference:
        return None  # not trained by this pipeline: its served rows are reported, not weighed
    return record["challenger"]["metrics"].get(record["primary_metric"])


def served_metric(by_version: dict[str, dict], primary: str) -> tuple[float | None, float | None, int]:
    """The live metric of the served predictions, whichever version served them: each version's live
    figure on its matured rows, weighted by rows, with the same weighting of their holdout figures.

    Returns (live, holdout, rows); (None, None, 0) when no version has both figures.
    """
    weighed = [
        (v["rows"], v[primary], v["holdout"])
        for v in by_version.values()
        if metrics.is_number(v.get(primary)) and metrics.is_number(v.get("holdout"))
    ]
    rows = sum(n for n, _, _ in weighed)
    if not rows:
        return None, None, 0
    return sum(n * m for n, m, _ in weighed) / rows, sum(n * h for n, _, h in weighed) / rows, rows


def live_note(usecase: UseCase, champion: str, by_version: dict, start: dt.datetime, end: dt.datetime) -> str:
    days = f"{start:%Y-%m-%d}..{end - dt.timedelta(days=1):%Y-%m-%d}"
    if not by_version:
        return (
            f"no prediction served for {days} has a matured label yet (labels arrive {usecase.label.delay_days} "
            "days late): no live metric tonight"
        )
    if champion not in by_version:
        served = ", ".join(f"v{v} ({m['rows']} rows)" for v, m in sorted(by_version.items()))
        return f"the champion v{champion} served none of the matured days {days} yet; they were served by {served}"
    return ""


def shadowed_rows(served: pd.DataFrame, shadow: pd.DataFrame) -> pd.DataFrame:
    """Matured rows scored by both the champion of the day and the challenger (``*_shadow`` columns)."""
    if shadow.empty or served.empty:
        return pd.DataFrame(columns=[*served.columns, "score_shadow", "model_version_shadow"])
    return served.merge(shadow.drop(columns=[data.TARGET]), on=["entity_id", "day"], suffixes=("", "_shadow"))


def shadow_comparison(usecase: UseCase, both: pd.DataFrame, thresholds: dict, primary: str) -> dict[str, Any] | None:
    """Champion vs challenger on the same matured rows, per pair of versions."""
    if both.empty:
        return None
    out = {"rows": len(both), "by_pair": []}
    for (champion, challenger), rows in both.groupby(["model_version", "model_version_shadow"]):
        y = rows[data.TARGET].to_numpy()
        a = metrics.metrics_for(usecase.task, y, rows[data.SCORE].to_numpy(), thresholds.get(str(champion)))
        b = metrics.metrics_for(usecase.task, y, rows["score_shadow"].to_numpy(), thresholds.get(str(challenger)))
        out["by_pair"].append(
            {
                "champion": str(champion),
                "challenger": str(challenger),
                "rows": len(rows),
                "champion_metric": metrics.json_safe(a.get(primary)),
                "challenger_metric": metrics.json_safe(b.get(primary)),
            }
        )
    return out
