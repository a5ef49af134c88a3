"""What a use case does with its models: training, promotion, inference and monitoring settings."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from pipelines.config.responsible import BehaviourSpec, FairnessSpec
from pipelines.config.types import Strict, cron_period


class CandidateSpec(Strict):
    """One model family to train; ``params`` go to the estimator as they are."""

    kind: Literal["logistic", "ridge", "xgboost"] = Field(
        description="Model family (logistic for binary, ridge for regression, xgboost for both)."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the estimator.")


class PromotionSpec(Strict):
    """When a challenger may replace the champion (all on the newest holdout)."""

    margin: float = Field(default=0.0, ge=0, description="Primary metric must beat the champion's by more than this.")
    floor: float = Field(description="Absolute minimum of the primary metric, also for the very first model.")
    calibration_tolerance: float = Field(
        default=0.01, ge=0, description="Brier score (classification) may be worse than the champion's by this much."
    )
    segment_floor: float | None = Field(default=None, description="Minimum primary metric in every segment.")
    segment_tolerance: float = Field(
        default=0.05, ge=0, description="A segment's metric may be worse than the champion's by this much."
    )
    min_segment_rows: int = Field(default=50, ge=1, description="Smaller segments are reported, not judged.")
    min_segment_minority: int = Field(
        default=10, ge=1, description="Classification: segments with fewer rows of the rarer class are not judged."
    )
    min_holdout_rows: int = Field(
        default=200, ge=1, description="Fewest holdout rows a decision may rest on (the first model too)."
    )


class _Scheduled(Strict):
    """A section with its own cron ``schedule`` (a fixed period: its runs' data intervals)."""

    schedule: str

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, expr: str) -> str:
        if expr.startswith("@") or len(expr.split()) != 5:
            raise ValueError(f"'{expr}' is not a 5-field cron expression")
        cron_period(expr)
        return expr

    @property
    def interval(self) -> dt.timedelta:
        return cron_period(self.schedule)


class TrainingSpec(_Scheduled):
    """Candidates, time split and the promotion gate of the use case's model."""

    schedule: str = Field(default="0 0 * * 1", description="Cron of the scheduled training runs (weekly).")
    window_days: int = Field(default=60, ge=3, description="Days of labelled reference days to train on.")
    validation_days: int = Field(default=3, ge=1, description="Newest labelled days before the holdout.")
    holdout_days: int = Field(default=3, ge=1, description="Newest labelled days: the promotion gate's holdout.")
    held_out_entities: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="Share of the entities never fitted on (the same ones in every run, by a hash of the entity "
        "id): validation and holdout rows are theirs only, so no model is judged on an entity whose neighbouring "
        "days it was fitted on. A label that spans days (churn within 7 days) is shared by an entity's "
        "neighbouring days, and a model that learns an entity's features scores its own future labels. "
        "0: a time split alone, every entity on both sides (only for labels that do not span days).",
    )
    min_rows: int = Field(default=1000, ge=10, description="Fewest labelled rows a training window may have.")
    warmup_days: int = Field(
        default=0,
        ge=0,
        description="Reference days this close to schedule.start_date are never trained on: their rolling "
        "features saw less history than their windows claim (set it to the longest window).",
    )
    seed: int = Field(default=42, description="Seed of every candidate: the same data gives the same models.")
    primary_metric: str = Field(
        default="roc_auc", description="Metric that picks the best candidate and gates promotion."
    )
    segments: list[str] = Field(default_factory=list, description="One-hot feature columns to report metrics by.")
    candidates: dict[str, CandidateSpec] = Field(
        min_length=1, description="Candidate name -> model; each trains in its own MLflow run."
    )
    promotion: PromotionSpec = Field(description="The champion/challenger gate.")
    fairness: FairnessSpec | None = Field(
        default=None, description="Optional: group metrics by sensitive attribute, guardrails of the gate."
    )
    behaviour: BehaviourSpec | None = Field(
        default=None, description="Optional: behavioural tests every candidate passes in the gate."
    )


class InferenceSpec(Strict):
    """Batch scoring of the entities active in each interval."""

    chunk_rows: int = Field(default=100_000, ge=100, description="Entities read, scored and written at a time.")
    connection_id: str = Field(default="mlops_warehouse", description="Where the predictions tables are.")
    reasons: int = Field(
        default=0,
        ge=0,
        le=20,
        description="Top reasons stored beside each score: the features with the largest contributions to "
        "its margin (exact: TreeSHAP for XGBoost, coefficient times centred feature for linear models). 0: none.",
    )


class RetrainPolicySpec(Strict):
    """When the drift monitor triggers ``<use case>_train``, and how often at most."""

    drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted model features that counts as evidence."
    )
    prediction_drift: bool = Field(default=True, description="A drifted champion score distribution counts too.")
    metric_drop: float | None = Field(
        default=0.05,
        gt=0,
        description="Champion's holdout metric minus its live metric on matured days that counts as evidence "
        "(in the primary metric's units; null: the live metric never triggers).",
    )
    min_rows: int = Field(default=500, ge=1, description="Fewer current (or matured labelled) rows judge nothing.")
    cooldown_days: int = Field(default=7, ge=1, description="At most one triggered retrain per this many days.")
    labelled_days_after_drift: int = Field(
        default=0,
        ge=0,
        description="Wait until this many days after the drift's onset have matured labels, then train on those "
        "days only (a model trained before the labels of the new regime exist cannot learn it). 0: trigger at "
        "once and train on the normal window.",
    )
    validation_days: int | None = Field(
        default=None,
        ge=1,
        description="Validation days of a retrain on the days since the onset (null: training.validation_days). "
        "Fewer days to split let the policy trigger sooner after a drift.",
    )
    holdout_days: int | None = Field(
        default=None,
        ge=1,
        description="Holdout days of that retrain, the freshest matured days the gate judges on "
        "(null: training.holdout_days; training.promotion.min_holdout_rows still applies).",
    )


class MonitoringSpec(_Scheduled):
    """The nightly drift monitor (``<use case>_drift_monitor``) and its retrain policy."""

    schedule: str = Field(default="0 0 * * *", description="Cron of the nightly runs; each covers one whole day.")
    current_days: int = Field(default=1, ge=1, description="Days up to the run's interval end compared to reference.")
    performance_days: int = Field(default=7, ge=1, description="Newest days with matured labels for the live metric.")
    sample_rows: int = Field(
        default=100_000, ge=1000, description="Larger reference or current windows are sampled to this many rows."
    )
    drift_method: str | None = Field(
        default=None, description="Evidently stattest for every feature (null: Evidently's choice by type and size)."
    )
    drift_threshold: float | None = Field(default=None, gt=0, description="Threshold of drift_method.")
    prediction_method: str = Field(default="psi", description="Evidently stattest for the champion's scores.")
    prediction_threshold: float = Field(default=0.2, gt=0, description="Threshold of prediction_method.")
    wait_hours: float = Field(
        default=6, gt=0, description="How long a run waits for its day's features before it fails."
    )
    keep_reports_days: int | None = Field(
        default=None,
        ge=1,
        description="HTML reports of nights older than this many days before the newest night are deleted "
        "(null: keep all). Their numbers stay: the night's JSON record and its drift_history row.",
    )
    retrain: RetrainPolicySpec = Field(
        default_factory=RetrainPolicySpec, description="When the monitor triggers a retrain."
    )
