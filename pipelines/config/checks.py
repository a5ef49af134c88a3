"""Checks across sections of a use-case file: names that must refer to something that exists.

They work on the raw mapping, so these problems are reported together with field
errors instead of only after every field is fixed.
"""

from __future__ import annotations

from typing import Any, get_args

from pipelines.config.responsible import responsible_problems
from pipelines.config.rollout import rollout_problems
from pipelines.config.types import CANDIDATE_KINDS, ClassificationMetric, ColumnType, RegressionMetric
from pipelines.simulation.checks import simulation_problems


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
    problems += simulation_problems(raw, datasets)
    problems += _monitoring_problems(raw)
    problems += rollout_problems(raw)
    problems += responsible_problems(raw)
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
