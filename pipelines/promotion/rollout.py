"""Staged rollout, the pure part: which entities a canary serves, and how a canary is judged.

A challenger that passed the gate under ``rollout.mode: canary`` serves the entities
whose hash of (rollout id, entity id) falls below ``canary_fraction``: the same
entities every day of the rollout, whatever order or chunk they come in, so a rerun
of any day gives the same split. Each night the canary's matured live metric is
compared with the champion's on the same entity-days: each entity is served by one of
the two and shadow-scored by the other, so the comparison is paired, with a bootstrap
interval of the difference that resamples entity-days within each day. The stored half (aliases, records) is
:mod:`pipelines.promotion.canary`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import RolloutSpec
from pipelines.hashsplit import below
from pipelines.training import metrics

WAIT, PROMOTE, ROLLBACK, APPROVAL = "wait", "promote", "rollback", "approval"
CANARY_STAGE, CHAMPION_STAGE, FULL_STAGE, ROLLED_BACK_STAGE = "canary", "champion", "full", "rolled_back"


def rollout_id(model: str, version: str) -> str:
    """One rollout per model version: its split never changes while it runs."""
    return f"{model}-v{version}"


def canary_mask(entity_ids: Iterable[Any], rollout: str, fraction: float) -> np.ndarray:
    """True for the entities the canary of ``rollout`` serves: a 64-bit hash of the rollout and the
    entity id (as text), read as a number in [0, 1), below ``fraction``."""
    return below(entity_ids, rollout, fraction)


@dataclass
class Comparison:
    """The canary's matured live metric against the champion's on the same entities and days."""

    metric: str
    days: list[str] = field(default_factory=list)
    rows: int = 0  # matured entity-days scored by both (one served, the other shadow-scored)
    canary_served: int = 0  # of those, served by the canary
    canary: float | None = None
    champion: float | None = None
    difference: float | None = None  # canary minus champion: higher is better for every primary metric
    low: float | None = None
    high: float | None = None
    confidence: float = 0.9
    resamples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return metrics.json_safe(asdict(self))


def pairs(served: pd.DataFrame, shadow: pd.DataFrame, canary: str) -> pd.DataFrame:
    """The matured entity-days the canary and another version both scored: columns ``day``,
    ``entity_id``, ``target``, ``canary``, ``champion`` (scores) and ``served_by``.

    During a canary each entity-day is served by one of the two and shadow-scored by the other
    (:func:`pipelines.inference.batch.score_interval`): every entity gives a pair.
    """
    both = served.merge(shadow, on=["entity_id", "day"], suffixes=("", "_shadow"))
    mine, theirs = both["model_version"].astype(str), both["model_version_shadow"].astype(str)
    canary_served = mine == str(canary)
    keep = canary_served ^ (theirs == str(canary))  # exactly one side is the canary
    both, canary_served = both[keep], canary_served[keep]
    return pd.DataFrame(
        {
            "day": both["day"],
            "entity_id": both["entity_id"],
            "target": both["target"].astype(float),
            "canary": np.where(canary_served, both["score"], both["score_shadow"]).astype(float),
            "champion": np.where(canary_served, both["score_shadow"], both["score"]).astype(float),
            "served_by": np.where(canary_served, CANARY_STAGE, CHAMPION_STAGE),
            "champion_version": np.where(canary_served, theirs[keep], mine[keep]),
        }
    ).reset_index(drop=True)


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from ranks (ties averaged): the same figure as scikit-learn's, without its overhead."""
    from scipy.stats import rankdata

    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _metric(task: str, metric: str, y: np.ndarray, scores: np.ndarray, threshold: float | None) -> float:
    if metric == "roc_auc":  # the common case, without the other metrics metrics_for computes
        return _auc(y.astype(int), scores)
    return metrics.metrics_for(task, y, scores, threshold)[metric]


def compare(
    paired: pd.DataFrame,
    task: str,
    metric: str,
    thresholds: tuple[float | None, float | None],
    spec: RolloutSpec,
    seed: int = 0,
) -> Comparison:
    """The canary's metric minus the champion's on the same entity-days (:func:`pairs`), with a
    bootstrap interval that resamples entity-days within each day (both scores of a row together).

    ``thresholds``: the decision thresholds of (canary, champion), for metrics that need one.
    """
    out = Comparison(metric=metric, confidence=spec.confidence)
    out.days = sorted(str(pd.Timestamp(d).date()) for d in paired["day"].unique())
    out.rows, out.canary_served = len(paired), int((paired["served_by"] == CANARY_STAGE).sum())
    if not out.rows:
        return out
    y = paired["target"].to_numpy(float)
    scores = {side: paired[side].to_numpy(float) for side in ("canary", "champion")}

    def difference(rows: np.ndarray) -> tuple[float, float, float]:
        mine = _metric(task, metric, y[rows], scores["canary"][rows], thresholds[0])
        theirs = _metric(task, metric, y[rows], scores["champion"][rows], thresholds[1])
        return mine, theirs, mine - theirs

    out.canary, out.champion, out.difference = difference(np.arange(out.rows))
    rng = np.random.default_rng(seed)
    days = [np.flatnonzero(paired["day"].to_numpy() == d) for d in paired["day"].unique()]
    diffs = [
        difference(np.concatenate([rng.choice(ix, size=len(ix)) for ix in days]))[2] for _ in range(spec.resamples)
    ]
    diffs = [d for d in diffs if math.isfinite(d)]
    out.resamples = len(diffs)
    if diffs:
        tail = (1 - spec.confidence) / 2
        out.low, out.high = (float(q) for q in np.quantile(diffs, [tail, 1 - tail]))
    return out


def judge(comparison: Comparison, spec: RolloutSpec, days_running: int) -> tuple[str, str]:
    """The night's action for a running canary, with the reason a person reads.

    ``days_running``: whole days since the canary's first served day (or since the gate passed it,
    before it served any). Promote when the interval of (canary - champion) lies above -margin;
    roll back when it lies below; otherwise wait, and at ``max_days`` roll back (not shown no worse).
    """
    c, m = comparison, spec.margin
    last_day = days_running >= spec.max_days
    stop = f"; day {days_running} of at most {spec.max_days}: rolled back, not shown to be no worse"
    matured = len(c.days)
    if matured < spec.min_days or c.rows < spec.min_rows:
        reason = (
            f"{matured} served day(s) of the canary have matured labels ({c.rows} entity-days scored by both, "
            f"{c.canary_served} served by the canary); a judgment needs {spec.min_days} day(s) and {spec.min_rows} "
            "rows"
        )
        return (ROLLBACK, reason + stop) if last_day else (WAIT, reason)
    if c.low is None or c.high is None or c.difference is None:
        reason = f"the {c.metric} of the canary or the champion is undefined on the matured days {c.days}"
        return (ROLLBACK, reason + stop) if last_day else (WAIT, reason)
    figures = (
        f"{c.metric} canary {c.canary:.4f} vs champion {c.champion:.4f} on the same {c.rows} entity-days of "
        f"{matured} matured day(s) ({c.canary_served} served by the canary): difference {c.difference:+.4f}, "
        f"{c.confidence:.0%} interval [{c.low:+.4f}, {c.high:+.4f}]"
    )
    if c.low > -m:
        return PROMOTE, f"{figures} lies above -{m:g} (the margin): no worse than the champion"
    if c.high < -m:
        return ROLLBACK, f"{figures} lies below -{m:g} (the margin): worse than the champion"
    reason = f"{figures} contains -{m:g} (the margin): not decided yet"
    return (ROLLBACK, reason + stop) if last_day else (WAIT, reason)
