"""The champion/challenger gate: score both on the holdout, decide, record, move the champion.

The decision itself is :func:`pipelines.promotion.policy.decide`; here the
versions are loaded and scored, the record is written to the decision log and
the version's tags, and the champion moves through the store's guarded move
(evaluated again when another run moved the champion meanwhile).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import UseCase
from pipelines.promotion import canary, responsible
from pipelines.promotion.decisions import decisions_dir, write_record
from pipelines.promotion.policy import Decision, Evaluation, decide
from pipelines.responsible import explain
from pipelines.stores import mlflow_store
from pipelines.stores.mlflow_store import CHAMPION
from pipelines.training import metrics
from pipelines.training.dataset import spec_of

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # evaluations when the champion keeps moving during one


def evaluate(
    client: Any,
    usecase: UseCase,
    version: str,
    holdout: pd.DataFrame,
    threshold: float | None,
    challenger: bool = False,
) -> Evaluation:
    """Load ``version`` and score the holdout with it: loading and scoring are the smoke test. Its
    group metrics too; a ``challenger`` also runs its behavioural tests and explains its scores."""
    spec = spec_of(usecase)
    result = Evaluation(version=version, rows=len(holdout))
    try:
        model = mlflow_store.load_model(mlflow_store.version_uri(mlflow_store.model_name(usecase), version))
        predicted = model.predict(holdout[model_input_columns(model, usecase)])
        scores = np.asarray(predicted).reshape(len(holdout), -1)[:, 0].astype(float)
        if not np.isfinite(scores).all():
            raise ValueError(f"{int((~np.isfinite(scores)).sum())} scores are not finite numbers")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {str(exc)[:500]}"
        log.warning("version %s does not load or score: %s", version, result.error)
        return result
    y = holdout[usecase.label.column].to_numpy()
    result.metrics = metrics.metrics_for(usecase.task, y, scores, threshold)
    result.segments = metrics.segment_metrics(usecase.task, holdout, y, scores, threshold, spec.segments)
    responsible.assess(result, usecase, model, holdout, y, scores, threshold, challenger)
    return result


def model_input_columns(model: Any, usecase: UseCase) -> list[str]:
    """The feature columns a loaded pyfunc model's signature names (the use case's, without one)."""
    from pipelines.training.dataset import model_features

    schema = model.metadata.get_input_schema()
    return [c.name for c in schema.inputs] if schema is not None else model_features(usecase)


def gate(
    usecase: UseCase,
    version: str,
    holdout: pd.DataFrame,
    force: bool = False,
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Judge challenger ``version`` against the champion on ``holdout``; promote it when it passes.

    Idempotent: a version already judged keeps its first decision (a retried task
    changes nothing). The decision goes to the version's tags and to
    ``reports/<use case>/decisions/v<version>.json``.

    Returns:
        The decision record.
    """
    client = mlflow_store.configure()
    name = mlflow_store.model_name(usecase)
    spec = spec_of(usecase)
    existing = client.get_model_version(name, version)
    record_path = decisions_dir(usecase) / f"v{version}.json"
    earlier = json.loads(record_path.read_text()) if record_path.exists() else None
    judged = existing.tags.get("decision") or mlflow_store.alias_version(client, name, CHAMPION) == version
    if earlier and (judged or canary.read_record(usecase, version)):
        # Judged already (a retried task): keep that decision; finish its tags if a crash cut them short.
        log.info("version %s was already judged: %s", version, earlier["decision"])
        if earlier["decision"] == "canary":
            canary.resume(client, usecase, version)
        _tag_version(client, name, version, earlier, record_path)
        return earlier
    mine = evaluate(client, usecase, version, holdout, mlflow_store.decision_threshold(existing), challenger=True)
    for _ in range(MAX_ATTEMPTS):
        champion_version = mlflow_store.alias_version(client, name, CHAMPION)
        theirs = None
        if champion_version is not None and champion_version != version:
            threshold = mlflow_store.decision_threshold(client.get_model_version(name, champion_version))
            theirs = evaluate(client, usecase, champion_version, holdout, threshold)
        decision = decide(
            mine, theirs, spec.promotion, spec.primary_metric, usecase.task, force, fairness=spec.fairness
        )
        # Under rollout.mode canary a passing challenger serves a share of the entities first (not the
        # first model, which has no champion to be compared with, nor a forced promotion).
        staged = decision.promote and theirs is not None and not decision.forced and usecase.rollout.mode == "canary"
        running, against, evaluated = (
            _against_canary(client, usecase, version, holdout, mine, decision) if staged else (None, None, None)
        )
        if against is not None:  # one rollout at a time, and never a worse one replacing a better one
            decision, staged = against, against.promote
        record = {
            "kind": "promotion",
            "model": name,
            "version": version,
            "decision": "canary" if staged else "promoted" if decision.promote else "rejected",
            "forced": decision.forced,
            "reason": decision.reason,
            "checks": [asdict(c) for c in decision.checks],
            "primary_metric": spec.primary_metric,
            "challenger": asdict(mine),
            "champion": asdict(theirs) if theirs else None,
            "compared_with": champion_version if theirs else None,
            "running_canary": {"version": running.version, "evaluation": asdict(evaluated)} if running else None,
            "holdout_rows": len(holdout),
            "holdout_days": sorted({str(pd.Timestamp(d).date()) for d in holdout.get("reference_day", [])}),
            "decided_at": dt.datetime.now(dt.UTC).isoformat(),  # when, for the audit trail; no logic uses it
        } | (context or {})
        # The record is written before the alias moves: a crash in between leaves a record that a
        # retry finds (above) instead of judging the version again against itself.
        path = write_record(usecase, f"v{version}.json", record)
        if not decision.promote:
            break
        if staged:
            assert champion_version is not None
            if canary.start(client, usecase, version, champion_version, _day(record), decision.reason):
                break
        elif mlflow_store.move_champion(client, name, version, champion_version):
            break
    else:
        raise RuntimeError(f"the champion of {name} kept moving during {MAX_ATTEMPTS} evaluations: try again")
    _tag_version(client, name, version, record, path)
    return metrics.json_safe(record)


def _against_canary(
    client: Any, usecase: UseCase, version: str, holdout: pd.DataFrame, mine: Evaluation, passed: Decision
) -> tuple[canary.Canary | None, Decision | None, Evaluation | None]:
    """A challenger that passed against the champion while a canary runs must beat the canary too,
    by the same gate on the same holdout, to supersede it; otherwise it is rejected and the canary
    keeps running (one rollout at a time, never a worse one replacing a better one)."""
    running = canary.running(client, usecase)
    if running is None or running.version == version:
        return None, None, None
    spec = spec_of(usecase)
    name = mlflow_store.model_name(usecase)
    threshold = mlflow_store.decision_threshold(client.get_model_version(name, running.version))
    theirs = evaluate(client, usecase, running.version, holdout, threshold)
    versus = decide(
        mine, theirs, spec.promotion, spec.primary_metric, usecase.task, against="canary", fairness=spec.fairness
    )
    reason = (
        f"{passed.reason}; it also beats the running canary v{running.version}, which it supersedes: {versus.reason}"
        if versus.promote
        else f"passes against champion v{running.champion} but not against the running canary v{running.version}, "
        f"which keeps running: {versus.reason}"
    )
    return running, Decision(versus.promote, reason, passed.checks + versus.checks), theirs


def _day(record: dict[str, Any]) -> str:
    """The day a canary starts: the end of the training window (the day after the newest holdout day)."""
    if record.get("training_window_end"):
        return str(record["training_window_end"])
    newest = max(record["holdout_days"]) if record["holdout_days"] else record["decided_at"][:10]
    return (dt.datetime.fromisoformat(newest).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)).isoformat()


def _tag_version(client: Any, name: str, version: str, record: dict[str, Any], path: Path) -> None:
    primary = record["primary_metric"]
    compared = {
        "challenger": {
            k: record["challenger"]["metrics"].get(k)
            for k in (primary, "brier", "rmse")
            if k in record["challenger"]["metrics"]
        },
        "champion": {
            k: record["champion"]["metrics"].get(k)
            for k in (primary, "brier", "rmse")
            if k in (record["champion"] or {}).get("metrics", {})
        }
        if record["champion"]
        else None,
    }
    mlflow_store.set_version_tags(
        client,
        name,
        version,
        {
            "decision": record["decision"],
            "decision_reason": record["reason"][:4000],
            "decision_forced": str(record["forced"]).lower(),
            "decision_metrics": json.dumps(compared)[:4000],
            "compared_with": record["compared_with"] or "none",
            "decision_record": str(path),
        }
        | _responsible_tags(record["challenger"]),
    )


def _responsible_tags(mine: dict[str, Any]) -> dict[str, str]:
    """The version's group gaps, behavioural test outcomes and top features, as registry tags."""
    tags = {}
    if mine.get("fairness"):
        tags["fairness"] = json.dumps({a: f["gaps"] for a, f in mine["fairness"].items()})[:4000]
    if mine.get("behaviour"):
        tags["behaviour"] = ", ".join(f"{t['name']}: {t['status']}" for t in mine["behaviour"])[:4000]
    if mine.get("importance"):
        tags["top_features"] = ", ".join(feature for feature, _ in explain.ranked(mine["importance"])[:5])
    return tags


def verdict(record: dict[str, Any]) -> str:
    """The one line a person reads at the end of the training run's log."""
    mine = record["challenger"]["metrics"].get(record["primary_metric"])
    shown = f" ({record['primary_metric']} {mine:.4f})" if isinstance(mine, float) else ""
    against = f" against champion v{record['compared_with']}" if record.get("compared_with") else ""
    return (
        f"VERDICT: {record['model']} v{record['version']}{shown} {record['decision'].upper()}{against}"
        f"{' (forced)' if record['forced'] else ''}: {record['reason']}"
    )
