"""How a challenger that passed the gate replaces the champion: at once, or through a canary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pipelines.config.lifecycle import RetrainPolicySpec
from pipelines.config.types import Strict


class RolloutSpec(Strict):
    """The rollout of a challenger that passed the promotion gate.

    ``direct``: it becomes the champion for every entity at once. ``canary``: it serves a fixed
    share of the entities (the same ones every day, chosen by a hash of the entity id and the
    rollout), and the nightly monitor promotes it to every entity once its matured live metric is,
    with the given confidence, not worse than the champion's on the same days, or rolls it back
    when it is worse.
    """

    mode: Literal["direct", "canary"] = Field(
        default="direct", description="direct: promoted at once (as before); canary: a share of the entities first."
    )
    canary_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of the entities the canary serves (strictly between 0 and 1)."
    )
    min_days: int = Field(
        default=2, ge=1, description="Served days of the canary whose labels matured before it may be judged."
    )
    max_days: int = Field(
        default=14,
        ge=1,
        description="Days after its start the canary is judged for the last time: not shown to be "
        "no worse by then, it is rolled back.",
    )
    min_rows: int = Field(
        default=300, ge=10, description="Matured rows each side (canary and champion) needs before a judgment."
    )
    margin: float = Field(
        default=0.01,
        ge=0,
        description="Non-inferiority margin in the primary metric's units: the canary passes when its metric "
        "minus the champion's is above -margin with the given confidence.",
    )
    confidence: float = Field(
        default=0.9, gt=0.5, lt=1, description="Confidence of the bootstrap interval of the difference."
    )
    resamples: int = Field(default=500, ge=100, le=20_000, description="Bootstrap resamples (seeded).")
    approval: Literal["none", "required"] = Field(
        default="none",
        description="required: a canary the monitor would promote waits for a person's answer in the Airflow UI "
        "(Required Actions, or the REST API): promote, or roll back.",
    )
    approvers: list[str] = Field(
        default_factory=list, description="Airflow user ids who may answer (empty: any user who may run the DAG)."
    )
    approval_timeout_hours: float = Field(
        default=48, gt=0, description="An unanswered request takes approval_default after this many hours."
    )
    approval_default: Literal["promote", "abort"] = Field(
        default="abort", description="What an unanswered request does once approval_timeout_hours have passed."
    )

    @model_validator(mode="after")
    def _days(self) -> RolloutSpec:
        if self.max_days < self.min_days:
            raise ValueError(f"max_days ({self.max_days}) is shorter than min_days ({self.min_days})")
        return self


def rollout_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """A canary that cannot work with the rest of the file: it needs inference and monitoring, must
    be judgeable before ``max_days`` (labels arrive ``label.delay_days`` late), and must end before
    the monitor may trigger another retrain (``monitoring.retrain.cooldown_days``)."""
    rollout = raw.get("rollout")
    if not isinstance(rollout, dict) or rollout.get("mode") != "canary":
        return []
    problems = []
    for needed in ("inference", "monitoring"):
        if not isinstance(raw.get(needed), dict):
            problems.append(("rollout.mode", f"a canary needs a {needed} section (it serves and is judged nightly)"))
    defaults = RolloutSpec.model_fields
    max_days = rollout.get("max_days", defaults["max_days"].default)
    min_days = rollout.get("min_days", defaults["min_days"].default)
    label = raw.get("label") if isinstance(raw.get("label"), dict) else {}
    delay = label.get("delay_days", 0)
    if all(isinstance(v, int) for v in (max_days, min_days, delay)) and max_days < min_days + delay:
        problems.append(
            (
                "rollout.max_days",
                f"{max_days} days cannot judge a canary: its first {min_days} day(s) (min_days) have matured "
                f"labels only {min_days + delay} days after it starts (label.delay_days: {delay})",
            )
        )
    monitoring = raw.get("monitoring") if isinstance(raw.get("monitoring"), dict) else {}
    timeout = rollout.get("approval_timeout_hours", defaults["approval_timeout_hours"].default)
    period = _period_hours(monitoring.get("schedule", "0 0 * * *"))
    if rollout.get("approval") == "required" and isinstance(timeout, int | float) and period and timeout < period:
        problems.append(
            (
                "rollout.approval_timeout_hours",
                f"{timeout} hours is shorter than a night of the monitor ({period:g} hours): the request would "
                "time out before a person sees it",
            )
        )
    retrain = monitoring.get("retrain") if isinstance(monitoring.get("retrain"), dict) else {}
    cooldown = retrain.get("cooldown_days", RetrainPolicySpec.model_fields["cooldown_days"].default)
    if isinstance(max_days, int) and isinstance(cooldown, int) and max_days > cooldown:
        problems.append(
            (
                "rollout.max_days",
                f"a canary of up to {max_days} days is longer than monitoring.retrain.cooldown_days ({cooldown}): "
                "the monitor could retrain while it runs; raise the cooldown or shorten the canary",
            )
        )
    return problems


def _period_hours(cron: Any) -> float | None:
    from pipelines.config.types import cron_period

    try:
        return cron_period(str(cron)).total_seconds() / 3600
    except Exception:  # a bad schedule is reported by its own field
        return None
