"""Typed use-case configuration, loaded from ``configs/<use case>.yaml``.

DAG files, the command line and every pipeline stage read a use case through
this package, so it stays light: pydantic and PyYAML only, no pandas, no Airflow.
A bad file fails at load time with one :class:`ConfigError` that lists every bad
field by its path in the file; :func:`scan` keeps the good files of a folder
usable when one of them is bad.

- ``types``: the vocabulary (column types, metrics, candidate kinds, the strict base model)
- ``data``, ``lifecycle``, ``simulation``: the sections of a file, as typed models
- ``usecase``: the whole file; ``checks``: references across its sections
- ``loader``: reading files, one parse per version of a file
"""

from pipelines.config.alerts import AlertsSpec
from pipelines.config.data import (
    ColumnSpec,
    DatasetSpec,
    EntitySpec,
    FeaturesSpec,
    LabelSpec,
    ScheduleSpec,
    SourceSpec,
)
from pipelines.config.lifecycle import (
    CandidateSpec,
    InferenceSpec,
    MonitoringSpec,
    PromotionSpec,
    RetrainPolicySpec,
    TrainingSpec,
)
from pipelines.config.loader import ConfigScan, config_paths, get_usecase, load_all, load_usecase, scan
from pipelines.config.rollout import RolloutSpec
from pipelines.config.simulation import SIMULATION_DEFAULT_POPULATION, DriftSpec, SimulationSpec, TargetSpec
from pipelines.config.types import CANDIDATE_KINDS, ColumnType, ConfigError
from pipelines.config.usecase import UseCase

__all__ = [
    "CANDIDATE_KINDS",
    "SIMULATION_DEFAULT_POPULATION",
    "AlertsSpec",
    "CandidateSpec",
    "ColumnSpec",
    "ColumnType",
    "ConfigError",
    "ConfigScan",
    "DatasetSpec",
    "DriftSpec",
    "EntitySpec",
    "FeaturesSpec",
    "InferenceSpec",
    "LabelSpec",
    "MonitoringSpec",
    "PromotionSpec",
    "RetrainPolicySpec",
    "RolloutSpec",
    "ScheduleSpec",
    "SimulationSpec",
    "SourceSpec",
    "TargetSpec",
    "TrainingSpec",
    "UseCase",
    "config_paths",
    "get_usecase",
    "load_all",
    "load_usecase",
    "scan",
]
