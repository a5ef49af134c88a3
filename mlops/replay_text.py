"""What `mlops replay` (and so `mlops demo`) prints: its plan, progress, the day table and the figures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines.config import UseCase


def plan(replay: Any, first_day: dt.date, end_day: dt.date, done: int) -> str:
    """What the replay will run, said before it starts."""
    days = (end_day - first_day).days
    names = [d.dag_id for d in replay.daily]
    lines = [
        f"replaying {replay.usecase.name} from {first_day} to {end_day - dt.timedelta(days=1)}: "
        f"{', '.join(names)} for {days} daily intervals (in-process dag.test)"
        + (f", resuming after the {done} days done" if done else "")
    ]
    if replay.train is not None:
        lines.append(f"  {replay.train.dag_id} at its ticks ({replay.usecase.training.schedule}) once labels allow")
    if replay.inference is not None:
        lines.append(f"  {replay.inference.dag_id} every day from the first champion on")
    if replay.monitor is not None:
        lines.append(f"  {replay.monitor.dag_id} every night from the first champion on, and the retrains it triggers")
    return "\n".join(lines)


def seconds_text(seconds: dict[str, list[float]]) -> str:
    return ", ".join(f"{name} {runs:.0f} x {secs / runs:.1f}s = {secs:.0f}s" for name, (runs, secs) in seconds.items())


def progress(row: dict[str, Any], drift_starts: bool) -> str:
    """One day's line while the replay runs."""
    parts = [row["day"] + (" (drift starts)" if drift_starts else "")]
    if row.get("champion"):
        parts.append(f"champion v{row['champion']}")
    if row.get("drift_share") is not None:
        parts.append(f"drifted {row['drift_share']:.0%}")
    if row.get("live_metric") is not None:
        parts.append(f"live {row['live_metric']:.3f}")
    if row.get("action"):
        parts.append(row["action"])
    if row.get("canary"):
        parts.append(canary_text(row["canary"]))
    parts += row["notes"]
    if row.get("retrain"):
        parts.append(row["retrain"])
    return ", ".join(parts)


def day_table(usecase: UseCase, days: list[dict[str, Any]], drift_date: dt.date | None) -> str:
    """One line per day: rows ingested, validation, champion, live metric, drift share, action."""
    from pipelines.stores import partitions

    dataset = usecase.features.dataset if usecase.features else next(iter(usecase.source.datasets))
    metric = usecase.training.primary_metric if usecase.training else "metric"
    header = (
        f"{'date':<12}{'rows':>7}  {'validation':<16}{'champion':>9}  {'served':<24}{'live ' + metric:>14}"
        f"{'drifted':>9}  action"
    )
    lines = [header, "-" * (len(header) + 20)]
    for row in days:
        validation = []
        rows = "-"
        for name in usecase.source.datasets:
            key = row["day"]
            info = partitions.read_info(partitions.partition_path(partitions.CURATED, usecase.name, name, key))
            quarantined = partitions.partition_path(partitions.QUARANTINE, usecase.name, name, key).exists()
            if name == dataset and info is not None:
                rows = str(info.rows)
            if quarantined:
                validation.append(f"{name} failed")
            elif info is not None and info.warnings:
                validation.append(f"{name} {len(info.warnings)} warn")
        live = row.get("live_metric")
        share = row.get("drift_share")
        action = row.get("action", "")
        if row.get("retrain"):
            action += " -> " + _short_verdict(row["retrain"])
        if row.get("canary"):
            action += "; " + canary_text(row["canary"])
        marker = " <- drift" if drift_date and row["day"] == drift_date.isoformat() else ""
        lines.append(
            f"{row['day']:<12}{rows:>7}  {', '.join(validation) or 'passed':<16}"
            f"{'v' + row['champion'] if row.get('champion') else '-':>9}  {served_text(row.get('served')):<24}"
            f"{'-' if live is None else f'{live:.4f}':>14}{'-' if share is None else f'{share:.0%}':>9}  "
            f"{action}{marker}"
        )
    return "\n".join(lines)


def served_text(served: dict[str, int] | None) -> str:
    """``{"1 champion": 1500, "3 canary": 500}`` -> ``v1 + v3 25%``: who served the day's predictions
    (and ``(shadow v4)``: a challenger scored in the shadow, served to nobody)."""
    if not served:
        return "-"
    shadow = [k.split(" ", 1)[0] for k in served if k.endswith(" challenger")]
    serving = {k: n for k, n in served.items() if not k.endswith(" challenger")}
    total = sum(serving.values())
    parts = []
    for key, rows in sorted(serving.items(), key=lambda kv: kv[0].endswith(" canary")):
        version, stage = key.split(" ", 1)
        parts.append(f"v{version}" + (f" {rows / total:.0%}" if stage == "canary" else ""))
    return " + ".join(parts) + "".join(f" (shadow v{v})" for v in shadow)


def canary_text(judged: dict[str, str]) -> str:
    """A night's canary judgment, short: ``canary v3: wait`` / ``canary v3 -> full``."""
    ends = {"promote": "-> full", "rollback": "-> rolled back", "approval": "waits for approval"}
    return f"canary v{judged['version']} {ends.get(judged['action'], judged['action'])}"


def _short_verdict(verdict: str) -> str:
    """``VERDICT: churn v4 (roc_auc 0.77) PROMOTED against ...`` -> ``v4 promoted`` (or ``canary``, ``rejected``)."""
    words = verdict.removeprefix("VERDICT:").split()
    version = next((w for w in words if w.startswith("v") and w[1:].isdigit()), "")
    decision = next((w.lower() for w in words if w in ("PROMOTED", "REJECTED", "CANARY")), verdict[:40])
    return f"{version} {decision}".strip()


def closed_loop_text(loop: dict[str, Any]) -> str:
    """The closed-loop figures as a person reads them."""
    lines = ["closed loop:"]
    if loop.get("drift_day"):
        lines.append(
            f"  drift from {loop['drift_day']}: first detected {loop.get('first_detected_day') or 'never'}"
            + (
                f" ({loop['detection_delay_days']} day(s) later)"
                if loop.get("detection_delay_days") is not None
                else ""
            )
            + f"; false alarms before it: {len(loop.get('false_alarms_before_drift') or [])}"
        )
    lines.append(
        f"  retrains triggered: {len(loop['triggered'])} ({', '.join(loop['triggered']) or 'none'}); "
        f"at most one per {loop['cooldown_days']}-day cooldown: "
        + ("yes" if loop["at_most_one_retrain_per_cooldown"] else "NO")
    )
    lines.append("  decisions: " + ", ".join(f"{k} {v}" for k, v in loop["decisions"].items() if v))
    old, retrain, metric = loop.get("old_champion"), loop.get("retrain"), loop.get("primary_metric")
    if old and old.get("pre_drift_metric") is not None:
        lines.append(f"  old champion v{old['version']}: {metric} {old['pre_drift_metric']:.4f} before the drift")
    if retrain:
        replaced = retrain.get("replaced_champion_post_drift_metric")
        lines.append(
            f"  after it, on the post-drift holdout {_days(retrain['post_drift_holdout_days'])}: "
            f"new v{retrain['version']} {retrain['new_champion_metric']:.4f}"
            + (f", replaced v{retrain['replaced_version']} {replaced:.4f}" if replaced is not None else "")
            + f" ({retrain['decision']})"
        )
        ratio = loop.get("recovery_ratio")
        lines.append(
            f"  recovery: new champion at {ratio:.1%} of the old champion's pre-drift {metric} "
            f"(target {loop['recovery_target']:.0%}): {'MET' if loop['recovered'] else 'NOT MET'}"
            if ratio is not None
            else "  recovery: no ratio"
        )
        for stage in retrain.get("rollout") or []:
            day, by = stage["day"][:10], stage["by"]
            lines.append(f"  rollout of v{retrain['version']}: {stage['stage']} from {day} ({by})")
        live = retrain.get("canary_live")
        if live and live.get("canary") is not None:
            lines.append(
                f"  live, on the canary's {len(live['days'])} matured day(s) ({live['rows']} entity-days scored by "
                f"both): v{retrain['version']} {live['canary']:.4f} vs the champion's {live['champion']:.4f}"
                + (
                    f" ({loop['live_ratio']:.1%} of the old champion's pre-drift {metric})"
                    if loop.get("live_ratio")
                    else ""
                )
            )
        if loop.get("time_to_recovery_days") is not None:
            canary = loop.get("time_to_canary_days")
            lines.append(
                f"  time to recovery: {loop['time_to_recovery_days']} days from the onset to the promoted retrain "
                + (f"serving every entity (its canary from day {canary}) " if canary is not None else "")
                + f"(label delay {loop['label_delay_days']} days)"
            )
    elif loop.get("drift_day"):
        lines.append("  no drift-triggered retrain was judged on post-drift days (run more days)")
    if not loop.get("drift_day"):
        lines += detections_text(loop)
    return "\n".join(lines)


def detections_text(loop: dict[str, Any], most: int = 30) -> list[str]:
    """The nights where drift was detected and what the policy did (without a known drift date)."""
    rows = loop.get("detections") or []
    if not rows:
        return ["  no night detected drift"]
    lines = [f"  nights with drift evidence: {len(rows)}"]
    for row in rows[:most]:
        share = "-" if row["drift_share"] is None else f"{row['drift_share']:.0%}"
        action = row["action"] or "no decision"
        lines.append(f"    {row['day']}: drifted {share}, {action}: {'; '.join(row['evidence'])}")
    if len(rows) > most:
        lines.append(f"    ... {len(rows) - most} more in the summary")
    return lines


FEW_STABLE_NIGHTS = 7  # fewer stable nights than a week say little about what a quiet night looks like


def thresholds_text(found: dict[str, Any]) -> str:
    """The drift measured on stable nights and the thresholds that would sit above it (never applied)."""
    lines = [f"thresholds ({found['basis']}):"]
    if not found["stable_nights"]:
        lines.append("  no stable night to learn from: replay more days before the first detection")
        return "\n".join(lines)
    lines.append(
        f"  on {found['stable_nights']} stable nights: drifted share of features max {found['drift_share_max']:.0%} "
        f"(mean {found['drift_share_mean']:.0%}); prediction drift ({found['prediction_method']}) max "
        f"{found['prediction_drift_max']:.4f}"
    )
    lines.append(
        f"  monitoring.retrain.drift_share: {found['drift_share']} now, suggested {found['suggested_drift_share']}"
    )
    suggested = found["suggested_prediction_threshold"]
    lines.append(
        f"  monitoring.prediction_threshold: {found['prediction_threshold']} now, "
        + (f"suggested {suggested}" if suggested is not None else f"no suggestion ({found['note']})")
    )
    if found["stable_nights"] < FEW_STABLE_NIGHTS:
        lines.append(
            f"  only {found['stable_nights']} stable nights: replay a longer quiet history before relying on these"
        )
    lines.append("  (suggestions only: edit configs/<use case>.yaml to apply them)")
    return "\n".join(lines)


def _days(days: list[str]) -> str:
    """``2025-02-04`` for one day, ``2025-02-04..2025-02-06`` for more."""
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
