"""Train a use case's candidates on a training set, each tracked in MLflow, and pick the best.

One parent run per training (the DAG run), one nested run per candidate. A
candidate that fails to train is logged as a failed nested run; the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import time
import traceback
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from pipelines import settings
from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.responsible import explain, fairness
from pipelines.stores import mlflow_store
from pipelines.training import candidates, metrics, plots
from pipelines.training.dataset import Split, TrainingData, check_labels, check_split, spec_of, split_by_time

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
PARTS = ("train", "validation", "holdout")


class UnknownCandidate(BadInput):
    """A candidate name that the use case's config does not define."""


class NoCandidateTrained(BadInput):
    """Every candidate failed to train: nothing to register."""


@dataclass
class CandidateResult:
    name: str
    kind: str
    run_id: str
    status: str  # "trained" or "failed"
    model_uri: str = ""
    threshold: float | None = None
    validation: dict[str, float] = field(default_factory=dict)
    holdout: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str = ""
    fit_seconds: float = 0.0


@dataclass
class TrainingOutcome:
    parent_run_id: str
    experiment_id: str
    results: list[CandidateResult]
    best: str  # name of the best trained candidate (on the validation days)
    split: dict[str, dict]

    def best_result(self) -> CandidateResult:
        return next(r for r in self.results if r.name == self.best)

    def to_dict(self) -> dict[str, Any]:
        return metrics.json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingOutcome:
        return cls(**(data | {"results": [CandidateResult(**r) for r in data["results"]]}))


def experiment_name(usecase: UseCase) -> str:
    return usecase.name


def check_candidates(usecase: UseCase, names: list[str] | None) -> list[str]:
    """The candidates to train: ``names`` (all configured ones when empty), each known.

    Raises:
        UnknownCandidate: lists the unknown names and the configured ones.
    """
    configured = list(spec_of(usecase).candidates)
    names = list(names or configured)
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise UnknownCandidate(
            f"unknown candidate(s) {unknown} for '{usecase.name}': training.candidates defines {configured}"
        )
    return names


def window_end(text: str) -> dt.datetime:
    """The end of a training window from the trigger form (an ISO datetime with a timezone).

    Raises:
        BadInput: not an ISO datetime with a timezone.
    """
    try:
        end = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadInput(f"window_end '{text}' is not an ISO datetime such as 2025-01-30T00:00:00+00:00") from None
    if end.tzinfo is None:
        raise BadInput(f"window_end '{text}' has no timezone: add one, for example +00:00")
    return end


def git_commit() -> str:
    """The repository's commit (with ``-dirty`` when it has uncommitted changes), else ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=settings.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("-dirty" if dirty else "")) if commit else "unknown"


def pip_requirements() -> list[str]:
    """What a logged model needs, pinned to what trained it (MLflow would otherwise infer it slowly)."""
    # Each package by the distribution that installed it: XGBoost's CPU build is ``xgboost-cpu``.
    packages = [("mlflow",), ("pandas",), ("numpy",), ("scikit-learn",), ("xgboost-cpu", "xgboost"), ("cloudpickle",)]
    return [_pinned(*names) for names in packages]


def _pinned(*distributions: str) -> str:
    """``name==version`` of the first of ``distributions`` installed."""
    for name in distributions:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    raise metadata.PackageNotFoundError(" or ".join(distributions))


def train_candidates(
    usecase: UseCase,
    data: TrainingData,
    names: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> TrainingOutcome:
    """Split ``data`` by time, train each candidate in a nested MLflow run, pick the best on validation.

    Raises:
        TrainingDataError: the window cannot be split or has one class only.
        NoCandidateTrained: every candidate failed (each failure is in its run).
    """
    spec = spec_of(usecase)
    names = check_candidates(usecase, names)
    split = split_by_time(data.frame, spec, usecase.entity.name)
    check_labels(split, data.label, usecase.task)
    check_split(split, usecase)
    exp = mlflow_store.experiment_id(experiment_name(usecase))
    if tags and tags.get("airflow_run_id"):  # a retry after a lost worker: close what its try left open
        for run_id in mlflow_store.end_abandoned_runs(exp, tags["airflow_run_id"]):
            log.warning(
                "MLflow run %s of an earlier try of %s was left running: ended as KILLED",
                run_id,
                tags["airflow_run_id"],
            )
    base_tags = {
        "usecase": usecase.name,
        "git_commit": git_commit(),
        "feature_service": data.feature_service,
        "training_window": f"{data.window_start.isoformat()}/{data.window_end.isoformat()}",
        "data_hash": data.content_hash,
    } | (tags or {})
    # Lineage of every run: the training set's file, content hash, window, feature service and schema.
    dataset = mlflow_store.training_dataset(
        data.path,
        f"{data.feature_service}:{data.window_start:%Y-%m-%d}..{data.window_end:%Y-%m-%d} "
        f"({len(data.frame)} rows, label {data.label})",
        data.content_hash[:20],
        data.frame,
    )
    run_name = f"train {data.window_start:%Y-%m-%d}..{data.window_end:%Y-%m-%d}"
    with mlflow_store.start_run(exp, run_name, base_tags) as parent:
        mlflow_store.log_input(dataset, "training")
        mlflow_store.log_params(
            {
                "window_start": data.window_start.isoformat(),
                "window_end": data.window_end.isoformat(),
                "feature_service": data.feature_service,
                "candidates": ",".join(names),
                "seed": spec.seed,
                "primary_metric": spec.primary_metric,
            }
            | {f"{part}_rows": len(getattr(split, part)) for part in PARTS}
            | {f"{part}_days": ",".join(split.days(part)) for part in ("validation", "holdout")}
        )
        mlflow_store.log_dict(split.summary(), "split.json")
        results = [_train_one(usecase, data, split, name, exp, base_tags, dataset) for name in names]
        trained = [r for r in results if r.status == "trained"]
        failed = [r for r in results if r.status != "trained"]
        mlflow_store.set_tags({"failed_candidates": ",".join(r.name for r in failed) or "none"})
        if not trained:
            mlflow_store.set_tags({"best_candidate": "none"})
            raise NoCandidateTrained(
                "every candidate failed to train: " + "; ".join(f"{r.name}: {r.error}" for r in failed)
            )
        best = max(trained, key=lambda r: _orderable(r.validation.get(spec.primary_metric)))
        mlflow_store.set_tags({"best_candidate": best.name})
        mlflow_store.log_metrics(metrics.flat(best.holdout, "best/holdout/"))
    for r in results:
        log.info(
            "candidate %s (%s): %s%s",
            r.name,
            r.kind,
            r.status,
            f", validation {spec.primary_metric} {r.validation.get(spec.primary_metric, float('nan')):.4f}"
            if r.status == "trained"
            else f": {r.error}",
        )
    return TrainingOutcome(parent.info.run_id, exp, results, best.name, split.summary())


def _orderable(value: float | None) -> float:
    return value if metrics.is_number(value) else -np.inf


def _train_one(
    usecase: UseCase,
    data: TrainingData,
    split: Split,
    name: str,
    experiment: str,
    tags: dict[str, str],
    dataset: Any,
) -> CandidateResult:
    from pipelines.training.model import ScoringModel

    spec = spec_of(usecase)
    candidate = spec.candidates[name]
    task = usecase.task
    features = data.features
    with mlflow_store.start_run(
        experiment, name, tags | {"candidate": name, "kind": candidate.kind}, nested=True
    ) as run:
        result = CandidateResult(name, candidate.kind, run.info.run_id, "failed")
        try:
            mlflow_store.log_input(dataset, "training")
            x = {part: getattr(split, part)[features].to_numpy(np.float32) for part in PARTS}
            y = {part: getattr(split, part)[data.label].to_numpy() for part in PARTS}
            t0 = time.perf_counter()
            fitted, params = candidates.fit(
                candidate, task, spec.seed, x["train"], y["train"], x["validation"], y["validation"]
            )
            result.fit_seconds = time.perf_counter() - t0
            mlflow_store.log_params({"kind": candidate.kind, "seed": spec.seed} | params)
            validation_scores = fitted.score(x["validation"])
            threshold = metrics.choose_threshold(y["validation"], validation_scores) if task == "binary" else None
            holdout_scores = fitted.score(x["holdout"])
            result.threshold = threshold
            result.validation = metrics.metrics_for(task, y["validation"], validation_scores, threshold)
            result.holdout = metrics.metrics_for(task, y["holdout"], holdout_scores, threshold)
            result.segments = metrics.segment_metrics(
                task, split.holdout, y["holdout"], holdout_scores, threshold, spec.segments
            )
            mlflow_store.log_metrics(
                metrics.flat(result.validation, "validation/")
                | metrics.flat(result.holdout, "holdout/")
                | {"fit_seconds": result.fit_seconds}
                | ({"threshold": threshold} if threshold is not None else {})
            )
            for segment, values in result.segments.items():
                mlflow_store.log_metrics(metrics.flat(values, f"holdout_segment/{segment.replace('=', '/')}/"))
            mlflow_store.log_dict(result.segments, "segment_metrics.json")
            if spec.fairness is not None:  # the gate judges them; every candidate's are tracked
                groups = fairness.group_metrics(
                    task, split.holdout, y["holdout"], holdout_scores, threshold, spec.fairness
                )
                mlflow_store.log_metrics(fairness.flat(groups))
                mlflow_store.log_dict(groups, "fairness.json")
            importance = explain.importance(fitted, split.holdout, features)
            mlflow_store.log_dict(importance, "explanations/global_importance.json")
            figures = plots.holdout_figures(task, y["holdout"], holdout_scores, f"{name}, holdout")
            figures["feature_importance.png"] = plots.importance_figure(
                importance, f"{name}, holdout", unit="mean |contribution| to the margin"
            )
            for file_name, fig in figures.items():
                mlflow_store.log_figure(fig, f"plots/{file_name}")
            plots.close(list(figures.values()))
            example = split.holdout[features].head(5)
            scoring = ScoringModel(fitted, features, threshold)
            result.model_uri = mlflow_store.log_model(MODEL_ARTIFACT, scoring, example, pip_requirements())
            result.status = "trained"
        except Exception as exc:  # one candidate's failure must not stop the others
            result.error = f"{type(exc).__name__}: {exc}"
            log.error("candidate %s failed to train:\n%s", name, traceback.format_exc())
            mlflow_store.set_tags({"error": result.error[:5000]})
            mlflow_store.end_failed_run()
    return result
