"""One use case: every section of its file, validated together."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipelines.config.alerts import AlertsSpec
from pipelines.config.checks import cross_reference_problems
from pipelines.config.data import EntitySpec, FeaturesSpec, LabelSpec, ScheduleSpec, SourceSpec
from pipelines.config.lifecycle import InferenceSpec, MonitoringSpec, TrainingSpec
from pipelines.config.rollout import RolloutSpec
from pipelines.config.simulation import SimulationSpec
from pipelines.config.types import NAME_PATTERN, Engine, Strict


class UseCase(Strict):
    """Everything the pipeline needs to know about one use case."""

    name: str = Field(
        description="Lower-case identifier, equal to the file name: it prefixes DAG ids and names folders."
    )
    description: str = Field(
        default="", description="What the model predicts, for people (the registered model's description)."
    )
    owner: str = Field(description="Owner of every DAG and task of the use case, as the Airflow UI shows it.")
    task: Literal["binary", "regression"] = Field(
        description="Binary classification (scores are probabilities) or regression."
    )
    entity: EntitySpec = Field(description="What one row of features and one prediction is about.")
    engine: Engine = Field(
        default="local",
        description="Where feature builds and batch scoring run: `local` (pandas in the task's own process) or "
        "`spark` (the Spark cluster of the `mlops_spark` connection, local mode by default; needs the `spark` "
        "extra and Java 17: [Run on Spark](../how-to/spark.md)).",
    )
    schedule: ScheduleSpec = Field(description="Ingestion schedule, time zone, start date and retries of every DAG.")
    source: SourceSpec = Field(description="The source database and the tables ingested from it.")
    label: LabelSpec = Field(description="Where the label is, what it refers to and how late it arrives.")
    features: FeaturesSpec | None = Field(default=None, description="Optional: the features DAG and the Feast objects.")
    training: TrainingSpec | None = Field(
        default=None, description="Optional: the train and rollback DAGs (needs features)."
    )
    inference: InferenceSpec | None = Field(
        default=None, description="Optional: the batch inference DAG (needs training)."
    )
    monitoring: MonitoringSpec | None = Field(
        default=None, description="Optional: the nightly drift monitor (needs training and inference)."
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        description="How a challenger that passed the gate replaces the champion (direct, or a canary first).",
    )
    alerts: AlertsSpec | None = Field(
        default=None, description="Optional: alerts to an HTTP receiver on failures and model events."
    )
    simulation: SimulationSpec | None = Field(
        default=None, description="Optional: a simulated source for `mlops demo` and `mlops simulate`."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
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
