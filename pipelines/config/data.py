"""What a use case reads and computes: source tables, columns and checks, schedule, label, features."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipelines.config.types import NAME_PATTERN, TABLE_PATTERN, Aggregation, ColumnType, Strict, cron_period


class ColumnSpec(Strict):
    """One column of a source table, with the checks that make a row valid."""

    name: str = Field(description="Column name in the source table (a lower-case identifier).")
    type: ColumnType = Field(description="How the column is read and checked.")
    nullable: bool = Field(
        default=False, description="Whether nulls are allowed (a null otherwise quarantines the partition)."
    )
    min: float | None = Field(
        default=None, description="Smallest valid value (numeric columns); below it is a critical failure."
    )
    max: float | None = Field(
        default=None, description="Largest valid value (numeric columns); above it is a critical failure."
    )
    values: list[str] | None = Field(default=None, description="The allowed values of a category column.")
    mean_warning: tuple[float, float] | None = Field(
        default=None, description="Expected range of the column mean; outside it only warns."
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
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


class DatasetSpec(Strict):
    """A source table that is ingested by data interval into its own partitions."""

    table: str = Field(description="Table (or view) in the source database.")
    event_time: str = Field(description="Timestamp column that places a row in a data interval.")
    key: list[str] = Field(min_length=1, description="Columns that identify a row.")
    columns: list[ColumnSpec] = Field(min_length=1, description="The columns read, each with its checks.")
    min_rows_warning: int = Field(default=0, ge=0, description="Fewer rows in an interval only warn (0: never).")
    lateness_minutes: int = Field(
        default=0,
        ge=0,
        description="How long after an interval ends its last rows may still arrive: ingestion waits that long "
        "past the end before reading it (0: read it as soon as it ends).",
    )
    late_after_hours: float | None = Field(
        default=None,
        gt=0,
        description="Rows of an interval are expected within this many hours of its end: an empty read before "
        "then waits (the task is rescheduled every 15 minutes, holding no worker); after it, the run raises a "
        "late_data alert and fails without retrying, curating nothing: run it again once the rows arrived. "
        "None: an empty interval is curated as an empty partition at once.",
    )
    max_shrink: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Largest share of its rows a curated partition may lose when its interval is ingested again; "
        "a bigger drop, or an empty read of a partition that had rows, stops and changes nothing unless the run "
        "allows it (the ingest form's allow_shrink).",
    )

    @field_validator("table")
    @classmethod
    def _plain_table_name(cls, table: str) -> str:
        if not TABLE_PATTERN.match(table):
            raise ValueError(f"table {table!r} is not a plain SQL identifier ('name' or 'schema.name')")
        return table

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


class SourceSpec(Strict):
    connection_id: str = Field(default="mlops_source", description="Airflow connection of the source database.")
    datasets: dict[str, DatasetSpec] = Field(
        min_length=1, description="Dataset name -> table; each becomes an ingest task."
    )

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, datasets: dict[str, DatasetSpec]) -> dict[str, DatasetSpec]:
        bad = [n for n in datasets if not NAME_PATTERN.match(n)]
        if bad:
            raise ValueError(f"dataset names {bad} are not lower-case identifiers")
        return datasets


class EntitySpec(Strict):
    name: str = Field(description="Entity id column, present in every dataset.")
    type: Literal["int", "string"] = Field(default="int", description="Type of the entity id.")


class ScheduleSpec(Strict):
    ingest: str = Field(default="0 0 * * *", description="Cron expression of the ingestion runs.")
    timezone: str = Field(default="UTC", description="IANA time zone of the cron ticks: days are local days.")
    start_date: dt.date = Field(description="First day the DAGs have intervals for.")
    catchup: bool = Field(default=False, description="Whether the scheduler runs every missed interval of ingestion.")
    retries: int = Field(default=2, ge=2, description="Retries of every task (bad input fails at once, without them).")
    retry_delay_minutes: float = Field(default=5, gt=0, description="Minutes between two tries of a task.")

    @field_validator("ingest")
    @classmethod
    def _cron(cls, expr: str) -> str:
        if expr.startswith("@") or len(expr.split()) != 5:
            raise ValueError(
                f"'{expr}' is not a 5-field cron expression (presets such as @daily are not "
                "accepted: they would give zero-length data intervals)"
            )
        cron_period(expr)
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
        return cron_period(self.ingest)


class LabelSpec(Strict):
    dataset: str = Field(description="Dataset that holds the labels.")
    column: str = Field(description="The label column (0/1 for binary, a number for regression).")
    reference_time: str = Field(
        description="Timestamp column of the moment the label is about (its day is the one predicted)."
    )
    delay_days: int = Field(ge=0, description="Days after the reference time that the label arrives.")


def feature_names(
    windows_days: list[int],
    aggregates: dict[str, list[str]],
    trends: list[str],
    latest: list[str],
    one_hot: dict[str, list[Any]],
) -> dict[str, str]:
    """Feature name -> pandas dtype of a features section, in a stable order (Feast's schema, the
    models' columns); plain arguments, so raw files are checked against the same names."""
    columns: dict[str, str] = {}
    for window in windows_days:
        columns[f"active_days_{window}d"] = "int64"
        for column, aggregations in aggregates.items():
            for how in aggregations:
                columns[f"{column}_{how}_{window}d"] = "float64"
    for column in trends:
        columns[f"{column}_trend"] = "float64"
    for column in latest:
        columns[f"{column}_latest"] = "float64"
    for column, values in one_hot.items():
        for value in values:
            columns[f"{column}_is_{value}"] = "int64"
    return columns


class FeaturesSpec(Strict):
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
    aggregates: dict[str, list[Aggregation]] = Field(
        default_factory=dict, description="Numeric column -> aggregations computed over each window."
    )
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
