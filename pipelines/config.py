"""Typed use-case configuration, loaded from ``configs/<use case>.yaml``.

DAG files, the command line and every pipeline stage read a use case through
this module, so it stays light: pydantic and PyYAML only, no pandas, no Airflow.
A bad file fails at load time with one :class:`ConfigError` that lists every bad
field by its path in the file.
"""

from __future__ import annotations

import datetime as dt
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


class SimulationSpec(_Strict):
    start: dt.date
    days: int = Field(default=30, ge=1)
    customers: int = Field(default=2000, ge=1)
    seed: int = 7
    drift_day: int | None = Field(default=None, ge=0)


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


class TrainingSpec(_Strict):
    """Candidates, time split and the promotion gate of the use case's model."""

    schedule: str = Field(default="0 0 * * 1", description="Cron of the scheduled training runs (weekly).")
    window_days: int = Field(default=60, ge=3, description="Days of labelled reference days to train on.")
    validation_days: int = Field(default=3, ge=1, description="Newest labelled days before the holdout.")
    holdout_days: int = Field(default=3, ge=1, description="Newest labelled days: the promotion gate's holdout.")
    min_rows: int = Field(default=1000, ge=10, description="Fewest labelled rows a training window may have.")
    seed: int = 42
    primary_metric: str = "roc_auc"
    segments: list[str] = Field(default_factory=list, description="One-hot feature columns to report metrics by.")
    candidates: dict[str, CandidateSpec] = Field(min_length=1)
    promotion: PromotionSpec

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


class InferenceSpec(_Strict):
    """Batch scoring of the entities active in each interval."""

    chunk_rows: int = Field(default=100_000, ge=100, description="Entities read, scored and written at a time.")
    connection_id: str = Field(default="mlops_warehouse", description="Where the predictions tables are.")


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
    """Load and validate one use-case file.

    Raises:
        ConfigError: the file is missing, is not YAML, or has invalid fields (all listed).
    """
    path = Path(path)
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
