"""One use case: every section of its file, validated together."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from pipelines.config.checks import cross_reference_problems
from pipelines.config.data import EntitySpec, FeaturesSpec, LabelSpec, ScheduleSpec, SourceSpec
from pipelines.config.lifecycle import InferenceSpec, MonitoringSpec, TrainingSpec
from pipelines.config.simulation import SimulationSpec
from pipelines.config.types import NAME_PATTERN, Strict


class UseCase(Strict):
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
