"""The retrain policy: from one night's evidence and the nights before it to one decision.

Pure functions of their inputs (no stores, no clock), so the whole table of cases
is unit-tested. The monitor task gathers the inputs and records the decision.

Debounce, in the order checked:

1. no evidence tonight: ``not_needed``;
2. a ``<use case>_train`` run is queued or running: ``suppressed_in_flight``;
3. a retrain was triggered less than ``cooldown_days`` ago: ``suppressed_cooldown``;
4. a retrain for this drift (same onset) already replaced the champion, and the new
   champion's own live metric does not show it failing: ``watching_new_champion``;
5. fewer than ``labelled_days_after_drift`` days since the drift's onset have matured
   labels: ``waiting_for_labels`` (a model trained only on the old regime cannot learn the new one);
6. otherwise ``triggered``, with a dedupe key naming the onset and the night.

A running canary (``rollout.mode: canary``) does not hold a retrain back: the retrain's
challenger must pass the gate against the champion and beat the canary on the same
holdout to replace it (:mod:`pipelines.promotion.gate`), so the monitor never acts on
the canary itself and a canary trained before the drift cannot delay its repair. A
retrain's own canary ends before the monitor may trigger again
(``rollout.max_days`` <= ``monitoring.retrain.cooldown_days``, checked on load).

A drift that persists for weeks has one onset: it triggers once. After the cooldown
it triggers again only when that retrain did not help: it was rejected or failed (the
champion that was failing still serves), or the champion it promoted is failing too,
measured on its own matured predictions (its live metric ``metric_drop`` below its
holdout figure). Features that still differ from before the onset are no evidence
against a champion trained on the new regime: its rolling windows mix both regimes
for a while, and its own reference is where it was trained.

The live metric (evidence of a metric drop) is that of the served predictions,
whichever version served them: per version on its matured rows, weighted by rows,
against the same weighting of those versions' holdout figures. With a long label
delay and weekly promotions the champion changes before its own labels mature, and
the predictions it replaced are still the ones users got.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.config import RetrainPolicySpec

TRIGGERED = "triggered"
NOT_NEEDED = "not_needed"
IN_FLIGHT = "suppressed_in_flight"
COOLDOWN = "suppressed_cooldown"
WAITING = "waiting_for_labels"
WATCHING = "watching_new_champion"
ACTIONS = (TRIGGERED, NOT_NEEDED, IN_FLIGHT, COOLDOWN, WATCHING, WAITING)


@dataclass(frozen=True)
class Evidence:
    """What one night measured, as the policy needs it."""

    night: dt.datetime  # the monitored interval's end
    current_start: dt.datetime  # first instant of the current window
    current_rows: int
    drift_share: float | None  # share of the model's features that drifted
    drifted_features: list[str] = field(default_factory=list)
    prediction_drifted: bool | None = None
    holdout_metric: float | None = None  # of the versions that served the matured days (row-weighted)
    live_metric: float | None = None  # of the served predictions on matured days (per version, row-weighted)
    live_rows: int = 0
    live_start: dt.datetime | None = None  # first matured day the live metric covers
    champion_version: str | None = None
    champion_holdout_metric: float | None = None  # the champion's, at its promotion
    champion_live_metric: float | None = None  # the champion's own, on the matured rows it served or shadow-scored
    champion_live_rows: int = 0


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    night: str
    onset: str | None = None  # first day of the drift this evidence belongs to
    evidence: list[str] = field(default_factory=list)
    dedupe_key: str | None = None
    window_end: str | None = None  # of the retrain
    window_days: int | None = None  # of the retrain (None: the training config's)
    drifted_features: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evidence_of(ev: Evidence, spec: RetrainPolicySpec) -> list[tuple[str, dt.datetime]]:
    """Which signals pass their thresholds tonight, each with the first day it speaks about."""
    found = []
    if ev.current_rows >= spec.min_rows:
        if ev.drift_share is not None and ev.drift_share >= spec.drift_share:
            found.append((f"data drift: {ev.drift_share:.0%} of features drifted (>= {spec.drift_share:.0%})", 0))
        if spec.prediction_drift and ev.prediction_drifted:
            found.append(("prediction drift: the champion's scores drifted", 0))
    if _dropped(ev.live_metric, ev.holdout_metric, ev.live_rows, spec):
        assert ev.live_metric is not None and ev.holdout_metric is not None
        found.append(
            (
                f"live metric {ev.live_metric:.4f} is {ev.holdout_metric - ev.live_metric:.4f} below the holdout's "
                f"{ev.holdout_metric:.4f} (>= {spec.metric_drop})",
                1,
            )
        )
    starts = (ev.current_start, ev.live_start or ev.current_start)
    return [(text, starts[which]) for text, which in found]


def _dropped(live: float | None, holdout: float | None, rows: int, spec: RetrainPolicySpec) -> bool:
    """Whether a live metric on at least ``min_rows`` matured rows fell ``metric_drop`` below its holdout figure."""
    return (
        spec.metric_drop is not None
        and live is not None
        and holdout is not None
        and rows >= spec.min_rows
        and holdout - live >= spec.metric_drop
    )


def onset_of(ev: Evidence, spec: RetrainPolicySpec, previous: dict[str, Any] | None) -> dt.datetime | None:
    """First day of the drift tonight's evidence belongs to: carried over from the night
    before when that night had evidence too (one drift, one onset), else tonight's earliest."""
    found = evidence_of(ev, spec)
    if not found:
        return None
    if previous and previous.get("onset") and previous.get("evidence"):
        return dt.datetime.fromisoformat(previous["onset"])
    return min(start for _, start in found)


def decide(
    usecase: str,
    ev: Evidence,
    spec: RetrainPolicySpec,
    label_delay_days: int,
    previous_night: dict[str, Any] | None,
    last_trigger: dict[str, Any] | None,
    in_flight: int,
    canary: str | None = None,
) -> Decision:
    """The retrain decision of one night.

    Args:
        usecase: the use case's name (part of the dedupe key).
        ev: tonight's evidence.
        spec: the retrain policy.
        label_delay_days: days after a reference day that its label arrives.
        previous_night: the history record of the night before (its ``onset``, ``evidence``), if any.
        last_trigger: the newest earlier ``triggered`` decision, if any.
        in_flight: queued or running runs of the train DAG.
        canary: the running canary, as a person reads it (None: no canary).
    """
    found = evidence_of(ev, spec)
    night = ev.night.isoformat()
    if not found:
        return Decision(NOT_NEEDED, _no_evidence(ev, spec), night)
    onset = onset_of(ev, spec, previous_night)
    assert onset is not None
    common = {"night": night, "onset": onset.isoformat(), "evidence": [text for text, _ in found]}
    common["drifted_features"] = list(ev.drifted_features)
    if in_flight:
        return Decision(IN_FLIGHT, f"{in_flight} training run(s) queued or running; not triggering another", **common)
    if last_trigger is not None:
        since = ev.night - dt.datetime.fromisoformat(last_trigger["night"])
        if since < dt.timedelta(days=spec.cooldown_days):
            when = last_trigger.get("day") or last_trigger["night"][:10]
            return Decision(
                COOLDOWN,
                f"a retrain was triggered {since.days} day(s) ago ({when}); cooldown is {spec.cooldown_days} days",
                **common,
            )
    replaced = _replaced_in_this_drift(ev, onset, last_trigger)
    if replaced and not _dropped(ev.champion_live_metric, ev.champion_holdout_metric, ev.champion_live_rows, spec):
        own = (
            f"live {ev.champion_live_metric:.4f} on {ev.champion_live_rows} matured rows vs holdout "
            f"{ev.champion_holdout_metric:.4f}"
            if ev.champion_live_metric is not None and ev.champion_holdout_metric is not None
            else f"{ev.champion_live_rows} of its predictions have matured labels"
        )
        return Decision(
            WATCHING,
            f"the retrain of {replaced} for the drift since {onset:%Y-%m-%d} replaced the champion with "
            f"v{ev.champion_version}; another retrain for this drift needs v{ev.champion_version}'s own live "
            f"metric to fall {spec.metric_drop} below its holdout ({own})",
            **common,
        )
    labelled_until = ev.night - dt.timedelta(days=label_delay_days)  # labels of days before this are known
    labelled_days = max((labelled_until - onset).days, 0)
    wait = spec.labelled_days_after_drift
    if wait and labelled_days < wait:
        return Decision(
            WAITING,
            f"drift since {onset:%Y-%m-%d}: {labelled_days} day(s) after it have matured labels, a retrain on the "
            f"new regime needs {wait} (labels arrive {label_delay_days} days late)",
            **common,
        )
    return Decision(
        TRIGGERED,
        "; ".join(text for text, _ in found)
        + (f"; training on the {labelled_days} labelled days since the onset" if wait else "")
        + (f"; {canary} is running: the retrain replaces it only by beating it on the same holdout" if canary else ""),
        dedupe_key=f"{usecase}:drift:{onset:%Y-%m-%d}:{ev.night - dt.timedelta(days=1):%Y-%m-%d}",  # onset, day
        window_end=night,
        window_days=(ev.night - onset).days if wait else None,
        **common,
    )


def _replaced_in_this_drift(ev: Evidence, onset: dt.datetime, last_trigger: dict[str, Any] | None) -> str | None:
    """The day of the last trigger when it belongs to this drift and the champion changed since it, else None."""
    if last_trigger is None or not last_trigger.get("onset") or ev.champion_version is None:
        return None
    same_drift = dt.datetime.fromisoformat(last_trigger["onset"]) == onset
    then = last_trigger.get("champion_version")
    if same_drift and then is not None and str(then) != str(ev.champion_version):
        return last_trigger.get("day") or last_trigger["night"][:10]
    return None


def _no_evidence(ev: Evidence, spec: RetrainPolicySpec) -> str:
    if ev.current_rows < spec.min_rows and ev.live_rows < spec.min_rows:
        return f"too few rows to judge ({ev.current_rows} current, {ev.live_rows} labelled; needs {spec.min_rows})"
    parts = []
    if ev.drift_share is not None:
        parts.append(f"{ev.drift_share:.0%} of features drifted (< {spec.drift_share:.0%})")
    if ev.prediction_drifted is not None:
        parts.append("scores drifted" if ev.prediction_drifted else "scores stable")
    if ev.live_metric is not None and ev.holdout_metric is not None:
        parts.append(f"live metric {ev.live_metric:.4f} vs holdout {ev.holdout_metric:.4f}")
    else:
        parts.append("no live metric yet")
    return "no evidence: " + ", ".join(parts)
