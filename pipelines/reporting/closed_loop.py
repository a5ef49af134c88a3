"""How well the loop recovered from a drift, read back from what the pipeline recorded.

From the drift history, the retrain decisions and the promotion records (no
recomputation): when the drift was first detected, how many retrains it
triggered and how far apart, and the champions' primary metric before and after:

* the old champion (the one serving on the drift day) on its pre-drift holdout;
* the same old champion on the post-drift holdout of the triggered retrain;
* the new champion on that same post-drift holdout (days it was not fitted on).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

from pipelines.config import UseCase
from pipelines.monitoring import policy
from pipelines.promotion import canary, rollout
from pipelines.reporting.models import promotion_records
from pipelines.stores import monitoring as store

DRIFT_SIGNALS = ("data drift", "prediction drift")
RECOVERY_TARGET = 0.95  # new champion's post-drift metric / old champion's pre-drift metric


def _day(night: str) -> str:
    """The day a night monitored (the night's end minus a day)."""
    return (dt.datetime.fromisoformat(night) - dt.timedelta(days=1)).date().isoformat()


def summarize(usecase: UseCase, warehouse_url: str, drift_day: dt.date | None) -> dict[str, Any]:
    """The closed-loop figures of a run over a stream whose drift started on ``drift_day``."""
    assert usecase.monitoring is not None
    history = store.read(warehouse_url, store.HISTORY, usecase.name)
    decisions = store.read(warehouse_url, store.DECISIONS, usecase.name)
    records = {r["version"]: r for r in promotion_records(usecase)}
    triggers = [d for d in decisions if d["action"] == policy.TRIGGERED]
    gaps = [
        (dt.datetime.fromisoformat(b["night"]) - dt.datetime.fromisoformat(a["night"])).days
        for a, b in itertools.pairwise(triggers)
    ]
    cooldown = usecase.monitoring.retrain.cooldown_days
    out: dict[str, Any] = {
        "drift_day": drift_day.isoformat() if drift_day else None,
        "nights_monitored": len(history),
        "triggered": [_day(d["night"]) for d in triggers],  # the monitored day of each trigger
        "at_most_one_retrain_per_cooldown": all(g >= cooldown for g in gaps),
        "cooldown_days": cooldown,
        "decisions": {a: sum(d["action"] == a for d in decisions) for a in policy.ACTIONS},
        "detections": detections(history, decisions),
        "label_delay_days": usecase.label.delay_days,
    }
    if drift_day is None:
        return out

    before = [h for h in history if dt.date.fromisoformat(h["day"]) < drift_day]
    after = [h for h in history if dt.date.fromisoformat(h["day"]) >= drift_day]
    detected = next((h for h in after if _drifted(h)), None)
    out["false_alarms_before_drift"] = [h["day"] for h in before if _drifted(h)]
    out["first_detected_day"] = detected["day"] if detected else None
    out["detection_delay_days"] = (dt.date.fromisoformat(detected["day"]) - drift_day).days if detected else None
    old_version = after[0]["champion_version"] if after else (history[-1]["champion_version"] if history else None)
    old = records.get(old_version) if old_version else None
    primary = usecase.training.primary_metric if usecase.training else None
    out["primary_metric"] = primary
    out["old_champion"] = {
        "version": old_version,
        "pre_drift_metric": old["challenger"]["metrics"].get(primary) if old else None,
        "pre_drift_holdout_days": old["holdout_days"] if old else None,
    }
    retrain = next(
        (
            r
            for r in records.values()
            if str(r.get("trigger_reason", "")).startswith("drift monitor")
            and r.get("holdout_days")
            and min(r["holdout_days"]) >= drift_day.isoformat()
        ),
        None,
    )
    if retrain is None:
        out["retrain"] = None
        out["recovered"] = False
        return out
    new_metric = retrain["challenger"]["metrics"].get(primary)
    replaced = retrain.get("champion") or {}
    out["retrain"] = {
        "version": retrain["version"],
        "decision": retrain["decision"],
        "reason": retrain["reason"],
        "post_drift_holdout_days": retrain["holdout_days"],
        "new_champion_metric": new_metric,
        "replaced_version": retrain.get("compared_with"),
        "replaced_champion_post_drift_metric": (replaced.get("metrics") or {}).get(primary),
    }
    staged = canary.read_record(usecase, retrain["version"]) if retrain["decision"] == "canary" else None
    if staged:
        out["retrain"]["rollout"] = [
            {k: stage.get(k) for k in ("stage", "by", "day", "reason")} for stage in staged["stages"]
        ]
    full = next((st for st in (staged or {}).get("stages", []) if st["stage"] == rollout.FULL_STAGE), None)
    if full and full.get("comparison"):  # the canary's live figures on matured labels when it was promoted
        out["retrain"]["canary_live"] = full["comparison"]
    pre = out["old_champion"]["pre_drift_metric"]
    ratio = _ratio(new_metric, pre)
    out["recovery_ratio"] = ratio
    out["live_ratio"] = _ratio((out["retrain"].get("canary_live") or {}).get("canary"), pre)
    out["recovery_target"] = RECOVERY_TARGET
    promoted = retrain["decision"] == "promoted" or full is not None  # at once, or at the end of its canary
    live_ok = out["live_ratio"] is None or out["live_ratio"] >= RECOVERY_TARGET  # a canary's live figure too
    out["recovered"] = bool(promoted and ratio is not None and ratio >= RECOVERY_TARGET and live_ok)
    # From the onset to the night whose triggered retrain was promoted (it serves from the next day on);
    # through a canary, to the night it was promoted to every entity (and, apart, to its canary's start).
    trigger_day = str(retrain.get("trigger_reason", "")).removeprefix("drift monitor ")[:10]
    recovered_day = _day(full["day"]) if full else trigger_day
    out["time_to_recovery_days"] = (
        (dt.date.fromisoformat(recovered_day) - drift_day).days if out["recovered"] and _is_day(recovered_day) else None
    )
    if staged and _is_day(trigger_day):
        out["time_to_canary_days"] = (dt.date.fromisoformat(trigger_day) - drift_day).days
    live_after = [
        (h["day"], h["live"]["by_version"].get(retrain["version"], {}).get(primary))
        for h in history
        if retrain["version"] in (h.get("live") or {}).get("by_version", {})
    ]
    out["new_champion_live"] = [{"day": d, "metric": m} for d, m in live_after]
    return out


def _ratio(new: Any, pre: Any) -> float | None:
    """A metric against the old champion's pre-drift one; losses are negated (neg_rmse): there the
    smaller magnitude is the better one."""
    if not (isinstance(new, float) and isinstance(pre, float) and pre and new):
        return None
    return new / pre if pre > 0 else pre / new


def _is_day(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _drifted(row: dict[str, Any]) -> bool:
    return any(e.startswith(DRIFT_SIGNALS) for e in row.get("evidence") or [])


def detections(history: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nights whose evidence held data or prediction drift, with what the policy decided."""
    actions = {d["night"]: d["action"] for d in decisions}
    return [
        {
            "day": h["day"],
            "drift_share": h["drift_share"],
            "prediction_drift": h["prediction_drift"]["score"],
            "evidence": h.get("evidence") or [],
            "action": actions.get(h["night"]),
        }
        for h in history
        if _drifted(h)
    ]


# Prediction-drift methods whose score grows with the drift (a distance): a threshold above the
# stable nights' scores makes sense. P-value tests (ks, chisquare, ...) go the other way.
DISTANCE_METHODS = ("psi", "wasserstein", "jensenshannon", "kl_div", "hellinger", "ed")
MARGIN_SHARE = 0.05  # suggested drift_share: the stable maximum plus this, rounded up to a 5% step
MARGIN_FACTOR = 1.5  # suggested prediction threshold: the stable maximum times this


def suggest_thresholds(usecase: UseCase, warehouse_url: str, drift_day: dt.date | None) -> dict[str, Any]:
    """Thresholds above what stable nights show: the nights before ``drift_day`` (a known change), or
    without one, before the first night with drift evidence. Suggestions only, never applied.
    """
    assert usecase.monitoring is not None
    spec = usecase.monitoring
    history = store.read(warehouse_url, store.HISTORY, usecase.name)
    if drift_day is not None:
        stable = [h for h in history if dt.date.fromisoformat(h["day"]) < drift_day]
        basis = f"nights before the known drift of {drift_day}"
    else:
        first = next((i for i, h in enumerate(history) if _drifted(h)), len(history))
        stable = history[:first]
        basis = "nights before the first detection" if first < len(history) else "every night (no detection)"
    shares = [h["drift_share"] for h in stable if h["drift_share"] is not None]
    scores = [h["prediction_drift"]["score"] for h in stable if h["prediction_drift"]["score"] is not None]
    out: dict[str, Any] = {
        "basis": basis,
        "stable_nights": len(stable),
        "drift_share": spec.retrain.drift_share,
        "prediction_method": spec.prediction_method,
        "prediction_threshold": spec.prediction_threshold,
        "drift_share_max": max(shares) if shares else None,
        "drift_share_mean": sum(shares) / len(shares) if shares else None,
        "prediction_drift_max": max(scores) if scores else None,
        "suggested_drift_share": None,
        "suggested_prediction_threshold": None,
        "note": "",
    }
    if shares:
        out["suggested_drift_share"] = min(math.ceil((max(shares) + MARGIN_SHARE) * 20 - 1e-9) / 20, 1.0)
    if spec.prediction_method not in DISTANCE_METHODS:
        out["note"] = f"'{spec.prediction_method}' is a p-value test: smaller is more drift"
    elif scores:
        out["suggested_prediction_threshold"] = float(f"{max(max(scores), 1e-4) * MARGIN_FACTOR:.2g}")
    return out
