"""The promotion policy: pure functions from evaluations to a decision, no MLflow."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipelines.config import PromotionSpec
from pipelines.config.responsible import FairnessSpec
from pipelines.training import metrics


@dataclass
class Evaluation:
    """A model version scored on the holdout: metrics, or the error that stopped it."""

    version: str
    metrics: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: int = 0
    error: str = ""
    fairness: dict[str, dict] = field(default_factory=dict)  # per sensitive attribute (responsible.fairness)
    behaviour: list[dict] = field(default_factory=list)  # behavioural test results (challengers only)
    importance: dict[str, float] = field(default_factory=dict)  # mean |contribution| per feature, largest first
    responsible_seconds: float = 0.0  # what the fairness, behaviour and explanation figures cost


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    judged: bool = True  # False: reported only (a group or slice too small to judge)


@dataclass
class Decision:
    promote: bool
    reason: str
    checks: list[Check]
    forced: bool = False


def decide(
    challenger: Evaluation,
    champion: Evaluation | None,
    spec: PromotionSpec,
    primary: str,
    task: str,
    force: bool = False,
    against: str = "champion",
    fairness: FairnessSpec | None = None,
) -> Decision:
    """The promotion policy. Pure: the same evaluations always give the same decision.

    The challenger must load and score (always, even forced). A first model (no
    champion, or one that no longer scores) needs the floor only; otherwise it
    must also beat the champion by the margin on the primary metric, keep its
    calibration, keep every judged segment above the floor and within tolerance
    of the champion, on a holdout of at least the minimum size. A champion that
    cannot be scored blocks promotion (only ``force`` passes it). Every model, the first too, must
    pass its behavioural tests and keep each group gap of ``fairness`` under its limit; against a
    champion, no gap may widen by more than its tolerance. ``against`` names the compared model's
    role in the reasons (the gate also judges a challenger against a running canary).
    """
    checks = [Check("smoke", not challenger.error, challenger.error or f"loads and scores {challenger.rows} rows")]
    if challenger.error:
        return Decision(False, f"challenger v{challenger.version} does not load or score: {challenger.error}", checks)
    value = challenger.metrics.get(primary, math.nan)
    checks.append(Check("floor", _ge(value, spec.floor), f"{primary} {value:.4f} vs floor {spec.floor}"))
    # One rule for every model, the first one too: a figure on a few rows proves nothing.
    checks.append(
        Check(
            "holdout_size",
            challenger.rows >= spec.min_holdout_rows,
            f"{challenger.rows} holdout rows vs minimum {spec.min_holdout_rows}",
        )
    )
    checks += behaviour_checks(challenger)
    if fairness is not None:
        checks += fairness_checks(
            challenger, None if champion is None or champion.error else champion, fairness, against
        )
    first = champion is None
    if champion is not None and champion.error:
        # Without the champion's figures nothing can be compared: a person decides (force_promote).
        checks.append(Check("champion_scores", False, f"{against} v{champion.version} not scored: {champion.error}"))
    elif champion is not None:
        theirs = champion.metrics.get(primary, math.nan)
        checks.append(
            Check(
                "margin",
                not math.isnan(value - theirs) and value - theirs > spec.margin,
                f"{primary} {value:.4f} vs {against} v{champion.version} {theirs:.4f} (needs > +{spec.margin})",
            )
        )
        if task == "binary":
            mine, old = challenger.metrics.get("brier", math.nan), champion.metrics.get("brier", math.nan)
            checks.append(
                Check(
                    "calibration",
                    _ge(old + spec.calibration_tolerance, mine),
                    f"Brier {mine:.4f} vs {against} {old:.4f} (tolerance {spec.calibration_tolerance})",
                )
            )
        checks += _segment_checks(challenger, champion, spec, primary, against)
    failed = [c for c in checks if not c.passed]
    if force:
        reason = "forced promotion" + (f" despite: {'; '.join(c.detail for c in failed)}" if failed else "")
        return Decision(True, reason, checks, forced=True)
    if failed:
        return Decision(False, "; ".join(f"{c.name}: {c.detail}" for c in failed), checks)
    if first:
        return Decision(True, f"first model: {primary} {value:.4f} meets the floor {spec.floor}", checks)
    assert champion is not None
    return Decision(
        True,
        f"beats {against} v{champion.version}: {primary} {value:.4f} vs {champion.metrics[primary]:.4f}, "
        "guardrails pass",
        checks,
    )


def judged(values: dict[str, float], spec: PromotionSpec, primary: str) -> bool:
    """Whether a segment is big enough to gate on (smaller ones are reported, not judged)."""
    minority = values.get("minority")
    return (
        (values.get("rows") or 0) >= spec.min_segment_rows
        and (minority is None or minority >= spec.min_segment_minority)
        and metrics.is_number(values.get(primary))
    )


def _segment_checks(
    challenger: Evaluation, champion: Evaluation, spec: PromotionSpec, primary: str, against: str
) -> list[Check]:
    checks = []
    for segment, mine in sorted(challenger.segments.items()):
        if not judged(mine, spec, primary):
            continue
        value = mine[primary]
        theirs = champion.segments.get(segment, {}).get(primary, math.nan)
        if spec.segment_floor is not None and not _ge(value, spec.segment_floor):
            checks.append(
                Check(f"segment {segment}", False, f"{segment} {primary} {value:.4f} below floor {spec.segment_floor}")
            )
        elif not math.isnan(theirs) and value < theirs - spec.segment_tolerance:
            checks.append(
                Check(
                    f"segment {segment}",
                    False,
                    f"{segment} {primary} {value:.4f} vs {against} {theirs:.4f} (tolerance {spec.segment_tolerance})",
                )
            )
    if not checks:
        count = sum(judged(m, spec, primary) for m in challenger.segments.values())
        checks.append(Check("segments", True, f"{count} segments big enough to judge, all within floor and tolerance"))
    return checks


def behaviour_checks(challenger: Evaluation) -> list[Check]:
    """One check per behavioural test; a test too small to judge is reported, neither passed nor failed."""
    return [
        Check(
            f"behaviour {t['name']}", t["status"] != "fail", f"{t['kind']}: {t['detail']}", t["status"] != "too_small"
        )
        for t in challenger.behaviour
    ]


def fairness_checks(
    challenger: Evaluation, champion: Evaluation | None, spec: FairnessSpec, against: str = "champion"
) -> list[Check]:
    """One check per sensitive attribute and group metric: under its limit, and no wider than the
    champion's by more than its tolerance. Too few big-enough groups: reported, not judged."""
    checks = []
    for attribute in spec.sensitive:
        mine = challenger.fairness.get(attribute) or {}
        theirs = ((champion.fairness if champion else {}) or {}).get(attribute) or {}
        for metric, guard in spec.metrics.items():
            name = f"fairness {attribute} {metric}"
            too_small = (mine.get("too_small") or {}).get(metric) or []
            small = f"; too small to judge: {', '.join(too_small)}" if too_small else ""
            value = (mine.get("gaps") or {}).get(metric)
            if value is None:
                checks.append(
                    Check(name, True, f"not judged: fewer than two {attribute} groups big enough{small}", judged=False)
                )
                continue
            before = (theirs.get("gaps") or {}).get(metric)
            problems = []
            if guard.limit is not None and value > guard.limit:
                problems.append(f"above the limit {guard.limit}")
            if guard.tolerance is not None and before is not None and value > before + guard.tolerance:
                problems.append(
                    f"wider than {against} v{champion.version}'s {before:.4f} by more than {guard.tolerance}"
                )
            compared = f" vs {against} {before:.4f}" if before is not None else ""
            detail = f"{attribute} {metric} {value:.4f}{compared} (limit {guard.limit}, tolerance {guard.tolerance})"
            checks.append(Check(name, not problems, f"{detail}{': ' + '; '.join(problems) if problems else ''}{small}"))
    return checks


def _ge(a: float, b: float) -> bool:
    return not (math.isnan(a) or math.isnan(b)) and a >= b
