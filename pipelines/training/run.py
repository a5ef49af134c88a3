"""One run of a use case's train DAG, step by step: request, training set, candidates, registration, gate.

Each function is one task of ``dags/train.py`` and takes and returns plain
mappings (what Airflow passes between tasks as XComs). ``run`` is what names the
run in the records it leaves: ``airflow_dag_id``, ``airflow_run_id``, ``trigger``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.config import UseCase

log = logging.getLogger(__name__)


def plan_request(usecase: UseCase, params: Mapping[str, Any], default_end: dt.datetime, trigger: str) -> dict:
    """What to train on (window, candidates, split, reason), checked before anything is written.

    Args:
        params: the run's params (the trigger form, or the drift monitor's conf).
        default_end: the end of the window when ``window_end`` is not given (the run's data interval end).
        trigger: the run type (``scheduled``, ``manual``, ...).

    Raises:
        BadInput: an unknown candidate, or a window end that is not an aware ISO datetime.
    """
    from pipelines.training.train import check_candidates, window_end

    spec = usecase.training
    assert spec is not None
    candidates = check_candidates(usecase, params.get("candidates"))
    end = params.get("window_end") or default_end.isoformat()
    window_end(end)
    reason = params.get("reason") or {"scheduled": f"scheduled ({spec.schedule})"}.get(trigger, trigger)
    return {
        "window_end": end,
        "window_days": int(params.get("window_days") or spec.window_days),
        "candidates": candidates,
        "force_promote": bool(params.get("force_promote")),
        "reason": reason,
        "trigger": trigger,
        "drift_report": params.get("drift_report") or "",
        "drifted_features": ",".join(params.get("drifted_features") or []),
        "validation_days": params.get("validation_days"),
        "holdout_days": params.get("holdout_days"),
    }


def build_set(usecase: UseCase, plan: Mapping[str, Any]) -> dict:
    """Build and write the training set of the plan's window; what later steps need to find it."""
    from pipelines.training.dataset import build_training_data

    data = build_training_data(usecase, dt.datetime.fromisoformat(plan["window_end"]), plan["window_days"])
    return {
        "path": str(data.path),
        "rows": len(data.frame),
        "content_hash": data.content_hash,
        "missing_rows": data.missing_rows,
        "quarantined": data.quarantined,
    }


def train_planned(usecase: UseCase, plan: Mapping[str, Any], tset: Mapping[str, Any], run: Mapping[str, str]) -> dict:
    """Train the plan's candidates on the training set, tracked in MLflow with the run's tags."""
    from pipelines.training.dataset import read_training_data, with_split
    from pipelines.training.train import train_candidates

    tags = {
        "airflow_dag_id": run["airflow_dag_id"],
        "airflow_run_id": run["airflow_run_id"],
        "trigger": plan["trigger"],
        "trigger_reason": plan["reason"],
        "force_promote": str(plan["force_promote"]).lower(),
    } | ({"drift_report": plan["drift_report"]} if plan["drift_report"] else {})
    split = with_split(usecase, plan.get("validation_days"), plan.get("holdout_days"))
    outcome = train_candidates(split, read_training_data(usecase, Path(tset["path"])), plan["candidates"], tags)
    return outcome.to_dict()


def register_best(usecase: UseCase, outcome: Mapping[str, Any]) -> str:
    """Register the best candidate as the challenger; its version."""
    from pipelines.stores.mlflow_store import register_challenger
    from pipelines.training.train import TrainingOutcome

    best = TrainingOutcome.from_dict(dict(outcome)).best_result()
    return register_challenger(
        usecase,
        best.model_uri,
        best.run_id,
        {"candidate": best.name, "threshold": str(best.threshold), "parent_run_id": outcome["parent_run_id"]},
    )


def gate_version(
    usecase: UseCase,
    version: str,
    tset: Mapping[str, Any],
    outcome: Mapping[str, Any],
    plan: Mapping[str, Any],
    run: Mapping[str, str],
) -> dict:
    """Judge the challenger on the holdout, promote or not, publish its model card; the decision."""
    from pipelines.promotion.gate import gate, verdict
    from pipelines.training import card
    from pipelines.training.dataset import read_training_data, split_by_time, with_split

    split = with_split(usecase, plan.get("validation_days"), plan.get("holdout_days")).training
    holdout = split_by_time(read_training_data(usecase, Path(tset["path"])).frame, split, usecase.entity.name).holdout
    context = {
        "airflow_dag_id": run["airflow_dag_id"],
        "airflow_run_id": run["airflow_run_id"],
        "trigger": plan["trigger"],
        "trigger_reason": plan["reason"],
        "training_run_id": outcome["parent_run_id"],
        "training_window_end": plan["window_end"],
        "training_set": tset["path"],
        "data_hash": tset["content_hash"],
    }
    record = gate(usecase, version, holdout, force=plan["force_promote"], context=context)
    card.publish(usecase, version, record, outcome["split"])
    log.info(verdict(record))
    return {k: record[k] for k in ("model", "version", "decision", "reason", "forced", "compared_with")}
