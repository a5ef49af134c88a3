"""Typed use-case configuration, loaded from ``configs/<use case>.yaml``.

DAG files, the command line and every pipeline stage read a use case through
this module, so it stays light: pydantic and PyYAML only, no pandas, no Airflow.
A bad file fails at load time with one :class:`ConfigError` that lists every bad
field by its path in the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines import settings

ColumnType = Literal["int", "float", "category", "string", "timestamp"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ConfigError(ValueError):
    """A use-case file that cannot be loaded; the message lists every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One column of a source table, with the checks that make a row valid."""

    name: str
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    mean_warning: tuple[float, float] | None = Field(
        default=None, description="Expected range of the column mean; outside it only warns."
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"'{name}' is not a lower-case identifier")
        return name

    @model_validator(mode="after")
    def _checks_fit_type(self) -> ColumnSpec:
        numeric = self.type in ("int", "float")
        if (self.min is not None or self.max is not None or self.mean_warning) and not numeric:
            raise ValueError(f"min/max/mean_warning need a numeric type, not '{self.type}'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.values is not None and self.type != "category":
            raise ValueError("values are only allowed on a 'category' column")
        if self.type == "category" and not self.values:
            raise ValueError("a 'category' column needs its allowed values")
        return self


class DatasetSpec(_Strict):
    """A source table that is ingested by data interval into its own partitions."""

    table: str
    event_time: str = Field(description="Timestamp column that places a row in a data interval.")
    key: list[str] = Field(min_length=1, description="Columns that identify a row.")
    columns: list[ColumnSpec] = Field(min_length=1)
    min_rows_warning: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _columns_consistent(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        problems = []
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            problems.append(f"duplicate columns {duplicated}")
        if self.event_time not in names:
            problems.append(f"event_time '{self.event_time}' is not among the columns")
        elif self.column(self.event_time).type != "timestamp":
            problems.append(f"event_time '{self.event_time}' must have type 'timestamp'")
        missing = [k for k in self.key if k not in names]
        if missing:
            problems.append(f"key columns {missing} are not among the columns")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def column(self, name: str) -> ColumnSpec:
        """Return the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


class SourceSpec(_Strict):
    connection_id: str = "mlops_source"
    datasets: dict[str, DatasetSpec] = Field(min_length=1)

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, datasets: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        bad = [n for n in datasets if not _NAME.match(n)]
        if bad:
            raise ValueError(f"dataset names {bad} are not lower-case identifiers")
        return datasets


class EntitySpec(_Strict):
    name: str
    type: Literal["int", "string"] = "int"


class ScheduleSpec(_Strict):
    ingest: str = Field(default="0 0 * * *", description="Cron expression of the ingestion runs.")
    timezone: str = "UTC"
    start_date: dt.date
    catchup: bool = False
    retries: int = Field(default=2, ge=2)
    retry_delay_minutes: float = Field(default=5, gt=0)

    @field_validator("ingest")
    @classmethod
    def _cron(cls, expr: str) -> str:
        if expr.startswith("@") or len(expr.split()) != 5:
            raise ValueError(
                f"'{expr}' is not a 5-field cron expression (presets such as @daily are not "
                "accepted: they would give zero-length data intervals)"
            )
        _cron_period(expr)
        return expr

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{name}' is not a known timezone (for example UTC or Europe/Paris)") from None
        return name

    @property
    def interval(self) -> dt.timedelta:
        """Length of each run's data interval: the fixed period between two cron ticks."""
        return _cron_period(self.ingest)


def _cron_period(expr: str) -> dt.timedelta:
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


class LabelSpec(_Strict):
    dataset: str
    column: str
    reference_time: str
    delay_days: int = Field(ge=0)


class TargetSpec(_Strict):
    """How the synthetic generator makes the label of an entity's day from that day's row.

    ``label = intercept + sum(weight * term) + noise * N(0, 1)``, where a term is a
    numeric column of the activity dataset (its value that day) or
    ``<category column>=<value>`` (1 when the row has that value, else 0).
    """

    intercept: float = 0.0
    noise: float = Field(default=1.0, ge=0, description="Standard deviation of the label's noise.")
    terms: dict[str, float] = Field(min_length=1, description="Term -> weight.")


class DriftSpec(_Strict):
    """What the synthetic generator changes from ``simulation.drift_day`` on."""

    scale: dict[str, float] = Field(
        default_factory=dict, description="Numeric column -> factor its values are multiplied by (covariate shift)."
    )
    intercept: float | None = Field(default=None, description="Replaces target.intercept (null: unchanged).")
    terms: dict[str, float] | None = Field(
        default=None, description="Replaces target.terms (concept change; null: unchanged)."
    )

    @field_validator("scale")
    @classmethod
    def _positive(cls, scale: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in scale.items() if not v > 0}
        if bad:
            raise ValueError(f"scale factors must be positive, got {bad}")
        return scale


SIMULATION_DEFAULT_POPULATION = 2000


class SimulationSpec(_Strict):
    """Defaults of ``mlops simulate`` / ``mlops demo``: which generator makes the source, and its parameters.

    ``generator: churn`` (the default) is the telecom world of the demo and counts
    ``customers``; ``generator: synthetic`` simulates any use case from its column
    specs, counts ``entities`` and needs a ``target`` (and a ``drift`` block for a
    ``drift_day``). The combinations are checked with the other cross-references.
    """

    generator: Literal["churn", "synthetic"] = "churn"
    start: dt.date
    days: int = Field(default=30, ge=1)
    customers: int | None = Field(default=None, ge=1, description="Churn generator: customers on day 0.")
    entities: int | None = Field(default=None, ge=1, description="Synthetic generator: entities, each active daily.")
    seed: int = 7
    drift_day: int | None = Field(default=None, ge=0)
    target: TargetSpec | None = None
    drift: DriftSpec | None = None

    @property
    def population(self) -> int:
        """Customers (churn) or entities (synthetic) to simulate."""
        return self.customers or self.entities or SIMULATION_DEFAULT_POPULATION


Aggregation = Literal["mean", "sum", "max", "min"]


class FeaturesSpec(_Strict):
    """Daily features per entity, computed from one dataset's curated partitions."""

    dataset: str = Field(description="Dataset whose curated partitions the features are computed from.")
    version: int = Field(
        default=1,
        ge=1,
        description="Version of the feature service (<use case>_v<version>) that models are trained on and "
        "scored with. Bump it when a change to the features would break models trained on the old ones.",
    )
    ttl_days: int = Field(ge=1, description="How long a feature row stays valid for serving and joins.")
    windows_days: list[int] = Field(min_length=1, description="Rolling windows, in days, ending at the interval end.")
    aggregates: dict[str, list[Aggregation]] = Field(default_factory=dict)
    trends: list[str] = Field(default_factory=list, description="Mean over the shortest window minus the longest.")
    latest: list[str] = Field(default_factory=list, description="The column's value on the entity's last day.")
    one_hot: list[str] = Field(default_factory=list, description="Category columns encoded as 0/1 per allowed value.")

    @field_validator("windows_days")
    @classmethod
    def _windows(cls, windows: list[int]) -> list[int]:
        if any(w < 1 for w in windows) or len(set(windows)) != len(windows):
            raise ValueError(f"windows must be distinct positive numbers of days, got {windows}")
        return sorted(windows)

    @property
    def history_days(self) -> int:
        """Days of history before an interval's end that its features need."""
        return max(self.windows_days)


ClassificationMetric = Literal["roc_auc", "pr_auc", "f1", "neg_log_loss", "neg_brier"]
RegressionMetric = Literal["neg_rmse", "neg_mae", "r2"]
CANDIDATE_KINDS = {"binary": ("logistic", "xgboost"), "regression": ("ridge", "xgboost")}


class CandidateSpec(_Strict):
    """One model family to train; ``params`` go to the estimator as they are."""

    kind: Literal["logistic", "ridge", "xgboost"]
    params: dict[str, Any] = Field(default_factory=dict)


class PromotionSpec(_Strict):
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
    min_holdout_rows: int = Field(default=200, ge=1)


class _Scheduled(_Strict):
    """A section with its own cron ``schedule`` (a fixed period: its runs' data intervals)."""

    schedule: str

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, expr: str) -> str:
        if expr.startswith("@") or len(expr.split()) != 5:
            raise ValueError(f"'{expr}' is not a 5-field cron expression")
        _cron_period(expr)
        return expr

    @property
    def interval(self) -> dt.timedelta:
        return _cron_period(self.schedule)


class TrainingSpec(_Scheduled):
    """Candidates, time split and the promotion gate of the use case's model."""

    schedule: str = Field(default="0 0 * * 1", description="Cron of the scheduled training runs (weekly).")
    window_days: int = Field(default=60, ge=3, description="Days of labelled reference days to train on.")
    validation_days: int = Field(default=3, ge=1, description="Newest labelled days before the holdout.")
    holdout_days: int = Field(default=3, ge=1, description="Newest labelled days: the promotion gate's holdout.")
    min_rows: int = Field(default=1000, ge=10, description="Fewest labelled rows a training window may have.")
    warmup_days: int = Field(
        default=0,
        ge=0,
        description="Reference days this close to schedule.start_date are never trained on: their rolling "
        "features saw less history than their windows claim (set it to the longest window).",
    )
    seed: int = 42
    primary_metric: str = "roc_auc"
    segments: list[str] = Field(default_factory=list, description="One-hot feature columns to report metrics by.")
    candidates: dict[str, CandidateSpec] = Field(min_length=1)
    promotion: PromotionSpec


class InferenceSpec(_Strict):
    """Batch scoring of the entities active in each interval."""

    chunk_rows: int = Field(default=100_000, ge=100, description="Entities read, scored and written at a time.")
    connection_id: str = Field(default="mlops_warehouse", description="Where the predictions tables are.")


class RetrainPolicySpec(_Strict):
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
    retrain: RetrainPolicySpec = Field(default_factory=RetrainPolicySpec)


class UseCase(_Strict):
    """Everything the pipeline needs to know about one use case."""

    name: str
    description: str = ""
    owner: str
    task: Literal["binary", "regression"]
    entity: EntitySpec
    schedule: ScheduleSpec
    source: SourceSpec
    label: LabelSpec
    features: FeaturesSpec | None = None
    training: TrainingSpec | None = None
    inference: InferenceSpec | None = None
    monitoring: MonitoringSpec | None = None
    simulation: SimulationSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"'{name}' is not a lower-case identifier (it names DAGs and folders)")
        return name

    @model_validator(mode="after")
    def _cross_references(self) -> UseCase:
        problems = cross_reference_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{loc}: {msg}" for loc, msg in problems))
        return self

    def dag_id(self, stage: str) -> str:
        """DAG ids are ``<use case>_<stage>``."""
        return f"{self.name}_{stage}"


def cross_reference_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Fields that name something that does not exist (entity, label columns), as (path, message).

    Works on the raw mapping too, so these problems are reported together with
    field errors instead of only after every field is fixed.
    """

    def columns_of(dataset: Any) -> list[str] | None:
        try:
            return [c["name"] for c in dataset["columns"]]
        except (KeyError, TypeError):
            return None

    problems = []
    datasets = (raw.get("source") or {}).get("datasets") if isinstance(raw.get("source"), dict) else None
    if not isinstance(datasets, dict):
        return problems
    entity = (raw.get("entity") or {}).get("name") if isinstance(raw.get("entity"), dict) else None
    for ds_name, dataset in datasets.items():
        names = columns_of(dataset)
        if entity and names is not None and entity not in names:
            problems.append(("entity.name", f"'{entity}' is not a column of dataset '{ds_name}'"))
    features = raw.get("features")
    if isinstance(features, dict) and features.get("dataset") is not None:
        source_ds = datasets.get(features["dataset"])
        if source_ds is None:
            problems.append(("features.dataset", f"'{features['dataset']}' is not a dataset in source.datasets"))
        else:
            types = {c.get("name"): c.get("type") for c in source_ds.get("columns") or [] if isinstance(c, dict)}
            wanted = {
                "aggregates": (list((features.get("aggregates") or {}).keys()), ("int", "float")),
                "trends": (features.get("trends") or [], ("int", "float")),
                "latest": (features.get("latest") or [], ("int", "float")),
                "one_hot": (features.get("one_hot") or [], ("category",)),
            }
            for field, (names, allowed) in wanted.items():
                for name in names:
                    if name not in types:
                        problems.append((f"features.{field}", f"'{name}' is not a column of '{features['dataset']}'"))
                    elif types[name] in get_args(ColumnType) and types[name] not in allowed:
                        problems.append((f"features.{field}", f"'{name}' has type {types[name]}, need {allowed}"))
    problems += _training_problems(raw)
    problems += _simulation_problems(raw, datasets)
    problems += _monitoring_problems(raw)
    label = raw.get("label")
    if isinstance(label, dict) and label.get("dataset") is not None:
        if label["dataset"] not in datasets:
            problems.append(("label.dataset", f"'{label['dataset']}' is not a dataset in source.datasets"))
        else:
            names = columns_of(datasets[label["dataset"]])
            for field in ("column", "reference_time"):
                if names is not None and label.get(field) is not None and label[field] not in names:
                    problems.append(
                        (f"label.{field}", f"'{label[field]}' is not a column of dataset '{label['dataset']}'")
                    )
    return problems


def _training_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    training = raw.get("training")
    if not isinstance(training, dict):
        return []
    problems = []
    task = raw.get("task")
    metrics = get_args(ClassificationMetric) if task == "binary" else get_args(RegressionMetric)
    metric = training.get("primary_metric", "roc_auc")
    if task in CANDIDATE_KINDS and metric not in metrics:
        problems.append(("training.primary_metric", f"'{metric}' is not a {task} metric (one of {list(metrics)})"))
    for name, candidate in (training.get("candidates") or {}).items():
        kind = candidate.get("kind") if isinstance(candidate, dict) else None
        if task in CANDIDATE_KINDS and kind in ("logistic", "ridge", "xgboost") and kind not in CANDIDATE_KINDS[task]:
            problems.append(
                (f"training.candidates.{name}.kind", f"'{kind}' does not fit a {task} task ({CANDIDATE_KINDS[task]})")
            )
    features = raw.get("features")
    one_hot = (features.get("one_hot") or []) if isinstance(features, dict) else []
    for segment in training.get("segments") or []:
        if segment not in one_hot:
            problems.append(("training.segments", f"'{segment}' is not one of features.one_hot {one_hot}"))
    if not isinstance(features, dict):
        problems.append(("training", "needs a features section: models are trained on the feature service"))
    return problems


def _monitoring_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    monitoring = raw.get("monitoring")
    if not isinstance(monitoring, dict):
        return []
    problems = []
    for needed in ("training", "inference"):
        if not isinstance(raw.get(needed), dict):
            problems.append(("monitoring", f"needs a {needed} section: it watches the champion's predictions"))
    training = raw.get("training") if isinstance(raw.get("training"), dict) else {}
    retrain = monitoring.get("retrain") if isinstance(monitoring.get("retrain"), dict) else {}
    wait = retrain.get("labelled_days_after_drift") or 0
    validation = "monitoring.retrain" if retrain.get("validation_days") else "training"
    holdout = "monitoring.retrain" if retrain.get("holdout_days") else "training"
    split_days = (
        (retrain.get("validation_days") or training.get("validation_days") or 3)
        + (retrain.get("holdout_days") or training.get("holdout_days") or 3)
        + 1
    )
    if isinstance(wait, int) and 0 < wait < split_days:
        problems.append(
            (
                "monitoring.retrain.labelled_days_after_drift",
                f"{wait} days cannot be split into training, validation and holdout days (needs at least "
                f"{split_days}: {validation}.validation_days + {holdout}.holdout_days + 1), or 0",
            )
        )
    if (monitoring.get("drift_threshold") is None) != (monitoring.get("drift_method") is None):
        problems.append(("monitoring.drift_threshold", "give drift_method and drift_threshold together, or neither"))
    return problems


def _simulation_problems(raw: dict[str, Any], datasets: dict[str, Any]) -> list[tuple[str, str]]:
    """Generator-specific fields, and whether the synthetic generator can fill the declared datasets."""
    simulation = raw.get("simulation")
    if not isinstance(simulation, dict):
        return []
    generator = simulation.get("generator", "churn")
    if generator == "churn":
        return [
            (f"simulation.{name}", f"only the synthetic generator uses it ({why})")
            for name, why in (
                ("entities", "the churn generator counts simulation.customers"),
                ("target", "the churn world has its own churn drivers"),
                ("drift", "the churn world has its own drift"),
            )
            if simulation.get(name) is not None
        ]
    if generator != "synthetic":
        return []  # reported as a field error
    problems = []
    if simulation.get("customers") is not None:
        problems.append(("simulation.customers", "the synthetic generator counts simulation.entities"))
    if not isinstance(simulation.get("target"), dict):
        problems.append(("simulation.target", "the synthetic generator needs a target (intercept, noise, terms)"))
    if simulation.get("drift_day") is not None and not isinstance(simulation.get("drift"), dict):
        problems.append(("simulation.drift", "the synthetic generator needs a drift block to know what changes"))
    label = raw.get("label") if isinstance(raw.get("label"), dict) else {}
    if label.get("dataset") not in datasets:
        return problems  # reported under label.dataset
    activity = [name for name in datasets if name != label["dataset"]]
    if len(activity) != 1:
        problems.append(
            (
                "simulation.generator",
                f"'synthetic' fills one activity dataset besides the label dataset '{label['dataset']}'; "
                f"source.datasets has {list(datasets)}",
            )
        )
        return problems
    entity = (raw.get("entity") or {}).get("name") if isinstance(raw.get("entity"), dict) else None
    problems += _synthetic_dataset_problems(activity[0], datasets[activity[0]], entity)
    problems += _synthetic_label_problems(label, datasets[label["dataset"]], entity)
    columns = _column_types(datasets[activity[0]])
    for block, field in (("target", "terms"), ("drift", "terms"), ("drift", "scale")):
        section = simulation.get(block)
        entries = section.get(field) if isinstance(section, dict) else None
        for term in entries if isinstance(entries, dict) else []:
            problem = _term_problem(str(term), columns, numeric_only=field == "scale")
            if problem:
                problems.append((f"simulation.{block}.{field}.{term}", f"{problem} of dataset '{activity[0]}'"))
    return problems


def _column_types(dataset: Any) -> dict[str, dict[str, Any]]:
    columns = dataset.get("columns") if isinstance(dataset, dict) else None
    return {c["name"]: c for c in columns or [] if isinstance(c, dict) and "name" in c}


def _synthetic_dataset_problems(name: str, dataset: Any, entity: str | None) -> list[tuple[str, str]]:
    """Every column of the activity dataset must be one the synthetic generator knows how to draw."""
    problems = []
    event_time = dataset.get("event_time") if isinstance(dataset, dict) else None
    for i, spec in enumerate(dataset.get("columns") or [] if isinstance(dataset, dict) else []):
        column = spec.get("name") if isinstance(spec, dict) else None
        if column is None or column in (entity, event_time):
            continue
        where = f"source.datasets.{name}.columns.{i}"
        if spec.get("type") in ("int", "float"):
            if spec.get("min") is None or spec.get("max") is None:
                problems.append((where, f"'{column}': the synthetic generator draws it between its min and max"))
        elif spec.get("type") != "category":
            problems.append((where, f"'{column}': the synthetic generator cannot draw a '{spec.get('type')}' column"))
    return problems


def _synthetic_label_problems(label: dict[str, Any], dataset: Any, entity: str | None) -> list[tuple[str, str]]:
    """The label dataset must hold exactly the entity, reference time, arrival time and a numeric label."""
    columns = _column_types(dataset)
    event_time = dataset.get("event_time") if isinstance(dataset, dict) else None
    expected = {entity, label.get("reference_time"), event_time, label.get("column")}
    problems = []
    if set(columns) != expected:
        problems.append(
            (
                f"source.datasets.{label['dataset']}.columns",
                f"the synthetic generator fills {sorted(str(c) for c in expected)}, not {sorted(columns)}",
            )
        )
    label_type = columns.get(label.get("column"), {}).get("type")
    if label_type is not None and label_type not in ("int", "float"):
        problems.append(("label.column", f"the synthetic generator makes numeric labels, not '{label_type}'"))
    return problems


def _term_problem(term: str, columns: dict[str, dict[str, Any]], numeric_only: bool) -> str | None:
    """Why ``term`` (``<numeric column>`` or ``<category column>=<value>``) names nothing, or None."""
    column, _, value = term.partition("=")
    spec = columns.get(column)
    if spec is None:
        return f"'{column}' is not a column"
    if value and not numeric_only:
        if spec.get("type") != "category":
            return f"'{column}=...' needs a category column, '{column}' has type {spec.get('type')}"
        if value not in (spec.get("values") or []):
            return f"'{value}' is not one of the values {spec.get('values')} of '{column}'"
        return None
    if spec.get("type") not in ("int", "float"):
        hint = "" if numeric_only else f" (write '{column}=<value>' for a category)"
        return f"'{column}' has type {spec.get('type')}, need a numeric column{hint}"
    return None


def _format_errors(path: Path, err: ValidationError, raw: dict[str, Any]) -> str:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "value_error" and not e["loc"]:
            continue  # cross-references, listed below from the raw file
        problems.append((loc, e["msg"].removeprefix("Value error, ")))
    problems += [p for p in cross_reference_problems(raw) if p not in problems]
    lines = [f"{path}: {len(problems)} invalid field(s):"]
    lines += [f"  - {loc}: {msg}" for loc, msg in problems]
    return "\n".join(lines)


def load_usecase(path: Path | str) -> UseCase:
    """Load and validate one use-case file (parsed once per version of the file in a process:
    every DAG file loads every config at every parse).

    Raises:
        ConfigError: the file is missing, is not YAML, or has invalid fields (all listed).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such use-case file") from None
    return _load_usecase(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _load_usecase(path: Path, mtime_ns: int, size: int) -> UseCase:
    """Parse and validate ``path``; the file's version is part of the cache key. UseCase objects are frozen."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such use-case file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        usecase = UseCase.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(path, err, raw)) from None
    if usecase.name != path.stem:
        raise ConfigError(f"{path}: name '{usecase.name}' must equal the file name '{path.stem}'")
    return usecase


def config_paths(configs_dir: Path | None = None) -> list[Path]:
    """The use-case files, sorted by name."""
    directory = configs_dir or settings.configs_dir()
    return sorted(directory.glob("*.yaml"))


def load_all(configs_dir: Path | None = None) -> list[UseCase]:
    """Load every use case in the configs folder; the first bad file raises."""
    return [load_usecase(p) for p in config_paths(configs_dir)]


def get_usecase(name: str, configs_dir: Path | None = None) -> UseCase:
    """Load the use case called ``name``, with a clear error listing the known ones."""
    directory = configs_dir or settings.configs_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = [p.stem for p in config_paths(directory)]
        raise ConfigError(f"unknown use case '{name}': no {path} (known: {', '.join(known) or 'none'})")
    return load_usecase(path)
