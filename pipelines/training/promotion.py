"""Registration, the champion/challenger gate, guarded alias moves, rollback and the decision log.

Aliases of the registered model ``<use case>``: ``challenger`` (the newest
registered candidate), ``champion`` (what inference uses), ``previous`` (the
champion before it: the default rollback target). MLflow's alias update is
last-writer-wins, so moves happen under a lock, after re-reading the champion.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines import settings
from pipelines.config import PromotionSpec, UseCase
from pipelines.errors import BadInput
from pipelines.locks import named_lock
from pipelines.training import metrics, tracking
from pipelines.training.dataset import spec_of

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS, ROLLED_BACK = "champion", "challenger", "previous", "rolled_back"
MAX_ATTEMPTS = 3  # evaluations when the champion keeps moving during one


class RollbackError(BadInput):
    """The rollback target does not exist, does not load, or there is none."""


@dataclass
class Evaluation:
    """A model version scored on the holdout: metrics, or the error that stopped it."""

    version: str
    metrics: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: int = 0
    error: str = ""


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Decision:
    promote: bool
    reason: str
    checks: list[Check]
    forced: bool = False


def model_name(usecase: UseCase) -> str:
    return usecase.name


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version holding ``alias``, or None (also when the model is not registered yet)."""
    import mlflow

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.MlflowException:
        return None


def register_challenger(usecase: UseCase, model_uri: str, run_id: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of the use case's model and point ``challenger`` at it."""
    import mlflow

    client = tracking.configure()
    name = model_name(usecase)
    try:
        client.create_registered_model(name, description=usecase.description, tags={"usecase": usecase.name})
    except mlflow.MlflowException:
        pass  # exists already
    existing = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:  # a retried task: the run's model is registered already
        version = existing[0]
    else:
        version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    log.info("registered %s version %s from run %s as '%s'", name, version.version, run_id, CHALLENGER)
    return str(version.version)


def evaluate(client: Any, usecase: UseCase, version: str, holdout: pd.DataFrame, threshold: float | None) -> Evaluation:
    """Load ``version`` and score the holdout with it: loading and scoring are the smoke test."""
    import mlflow.pyfunc

    spec = spec_of(usecase)
    result = Evaluation(version=version, rows=len(holdout))
    try:
        model = mlflow.pyfunc.load_model(f"models:/{model_name(usecase)}/{version}")
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
    return result


def model_input_columns(model: Any, usecase: UseCase) -> list[str]:
    """The feature columns a loaded pyfunc model's signature names (the use case's, without one)."""
    from pipelines.training.dataset import model_features

    schema = model.metadata.get_input_schema()
    return [c.name for c in schema.inputs] if schema is not None else model_features(usecase)


def decide(
    challenger: Evaluation,
    champion: Evaluation | None,
    spec: PromotionSpec,
    primary: str,
    task: str,
    force: bool = False,
) -> Decision:
    """The promotion policy. Pure: the same evaluations always give the same decision.

    The challenger must load and score (always, even forced). A first model (no
    champion, or one that no longer scores) needs the floor only; otherwise it
    must also beat the champion by the margin on the primary metric, keep its
    calibration, keep every judged segment above the floor and within tolerance
    of the champion, on a holdout of at least the minimum size. A champion that
    cannot be scored blocks promotion (only ``force`` passes it).
    """
    checks = [Check("smoke", not challenger.error, challenger.error or f"loads and scores {challenger.rows} rows")]
    if challenger.error:
        return Decision(False, f"challenger v{challenger.version} does not load or score: {challenger.error}", checks)
    value = challenger.metrics.get(primary, math.nan)
    checks.append(Check("floor", _ge(value, spec.floor), f"{primary} {value:.4f} vs floor {spec.floor}"))
    # One rule for every model, the first one too: a figure on a few rows proves nothing.
    checks.append(
        Check(
            "holdout_size",
            challenger.rows >= spec.min_holdout_rows,
            f"{challenger.rows} holdout rows vs minimum {spec.min_holdout_rows}",
        )
    )
    first = champion is None
    if champion is not None and champion.error:
        # Without the champion's figures nothing can be compared: a person decides (force_promote).
        checks.append(Check("champion_scores", False, f"champion v{champion.version} not scored: {champion.error}"))
    elif champion is not None:
        theirs = champion.metrics.get(primary, math.nan)
        checks.append(
            Check(
                "margin",
                not math.isnan(value - theirs) and value - theirs > spec.margin,
                f"{primary} {value:.4f} vs champion v{champion.version} {theirs:.4f} (needs > +{spec.margin})",
            )
        )
        if task == "binary":
            mine, old = challenger.metrics.get("brier", math.nan), champion.metrics.get("brier", math.nan)
            checks.append(
                Check(
                    "calibration",
                    _ge(old + spec.calibration_tolerance, mine),
                    f"Brier {mine:.4f} vs champion {old:.4f} (tolerance {spec.calibration_tolerance})",
                )
            )
        checks += _segment_checks(challenger, champion, spec, primary)
    failed = [c for c in checks if not c.passed]
    if force:
        reason = "forced promotion" + (f" despite: {'; '.join(c.detail for c in failed)}" if failed else "")
        return Decision(True, reason, checks, forced=True)
    if failed:
        return Decision(False, "; ".join(f"{c.name}: {c.detail}" for c in failed), checks)
    if first:
        return Decision(True, f"first model: {primary} {value:.4f} meets the floor {spec.floor}", checks)
    assert champion is not None
    return Decision(
        True,
        f"beats champion v{champion.version}: {primary} {value:.4f} vs {champion.metrics[primary]:.4f}, "
        "guardrails pass",
        checks,
    )


def judged(values: dict[str, float], spec: PromotionSpec, primary: str) -> bool:
    """Whether a segment is big enough to gate on (smaller ones are reported, not judged)."""
    minority = values.get("minority")
    return (
        (values.get("rows") or 0) >= spec.min_segment_rows
        and (minority is None or minority >= spec.min_segment_minority)
        and metrics.is_number(values.get(primary))
    )


def _segment_checks(challenger: Evaluation, champion: Evaluation, spec: PromotionSpec, primary: str) -> list[Check]:
    checks = []
    for segment, mine in sorted(challenger.segments.items()):
        if not judged(mine, spec, primary):
            continue
        value = mine[primary]
        theirs = champion.segments.get(segment, {}).get(primary, math.nan)
        if spec.segment_floor is not None and not _ge(value, spec.segment_floor):
            checks.append(
                Check(f"segment {segment}", False, f"{segment} {primary} {value:.4f} below floor {spec.segment_floor}")
            )
        elif not math.isnan(theirs) and value < theirs - spec.segment_tolerance:
            checks.append(
                Check(
                    f"segment {segment}",
                    False,
                    f"{segment} {primary} {value:.4f} vs champion {theirs:.4f} (tolerance {spec.segment_tolerance})",
                )
            )
    if not checks:
        count = sum(judged(m, spec, primary) for m in challenger.segments.values())
        checks.append(Check("segments", True, f"{count} segments big enough to judge, all within floor and tolerance"))
    return checks


def _ge(a: float, b: float) -> bool:
    return not (math.isnan(a) or math.isnan(b)) and a >= b


def move_champion(client: Any, name: str, version: str, expected: str | None) -> bool:
    """Make ``version`` the champion and the old champion ``previous``, if the champion is still ``expected``.

    Under a lock, the champion is re-read just before the move: when another run
    moved it since ``expected`` was read, nothing changes and False is returned
    (the caller evaluates again). ``champion`` is overwritten in place, never removed,
    so a reader always finds one.
    """
    with named_lock("registry", name):
        current = alias_version(client, name, CHAMPION)
        if current != expected:
            log.warning("champion of %s moved from v%s to v%s during evaluation", name, expected, current)
            return False
        if current is not None and current != version:
            client.set_registered_model_alias(name, PREVIOUS, current)
        client.set_registered_model_alias(name, CHAMPION, version)
    return True


def decisions_dir(usecase: UseCase) -> Path:
    return decisions_dir_for(usecase.name)


def decisions_dir_for(usecase: str) -> Path:
    """``reports/<use case>/decisions/``: one JSON record per promotion decision and rollback."""
    return settings.reports_dir() / usecase / "decisions"


def write_record(usecase: UseCase, file_name: str, record: dict[str, Any]) -> Path:
    """Write one decision record atomically under ``reports/<use case>/decisions/``."""
    path = decisions_dir(usecase) / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metrics.json_safe(record), indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


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
    client = tracking.configure()
    name = model_name(usecase)
    spec = spec_of(usecase)
    existing = client.get_model_version(name, version)
    record_path = decisions_dir(usecase) / f"v{version}.json"
    earlier = json.loads(record_path.read_text()) if record_path.exists() else None
    if earlier and (existing.tags.get("decision") or alias_version(client, name, CHAMPION) == version):
        # Judged already (a retried task): keep that decision; finish its tags if a crash cut them short.
        log.info("version %s was already judged: %s", version, earlier["decision"])
        _tag_version(client, name, version, earlier, record_path)
        return earlier
    threshold = _threshold(existing)
    mine = evaluate(client, usecase, version, holdout, threshold)
    for _ in range(MAX_ATTEMPTS):
        champion_version = alias_version(client, name, CHAMPION)
        theirs = None
        if champion_version is not None and champion_version != version:
            theirs = evaluate(
                client, usecase, champion_version, holdout, _threshold(client.get_model_version(name, champion_version))
            )
        decision = decide(mine, theirs, spec.promotion, spec.primary_metric, usecase.task, force)
        record = {
            "kind": "promotion",
            "model": name,
            "version": version,
            "decision": "promoted" if decision.promote else "rejected",
            "forced": decision.forced,
            "reason": decision.reason,
            "checks": [asdict(c) for c in decision.checks],
            "primary_metric": spec.primary_metric,
            "challenger": asdict(mine),
            "champion": asdict(theirs) if theirs else None,
            "compared_with": champion_version if theirs else None,
            "holdout_rows": len(holdout),
            "holdout_days": sorted({str(pd.Timestamp(d).date()) for d in holdout.get("reference_day", [])}),
            "decided_at": dt.datetime.now(dt.UTC).isoformat(),  # when, for the audit trail; no logic uses it
        } | (context or {})
        # The record is written before the alias moves: a crash in between leaves a record that a
        # retry finds (above) instead of judging the version again against itself.
        path = write_record(usecase, f"v{version}.json", record)
        if not decision.promote or move_champion(client, name, version, champion_version):
            break
    else:
        raise RuntimeError(f"the champion of {name} kept moving during {MAX_ATTEMPTS} evaluations: try again")
    _tag_version(client, name, version, record, path)
    return metrics.json_safe(record)


def version_threshold(client: Any, usecase: UseCase, version: str) -> float | None:
    """The decision threshold a version was trained with (classification), or None."""
    import mlflow

    try:
        return _threshold(client.get_model_version(model_name(usecase), version))
    except mlflow.MlflowException:
        return None


def _threshold(version: Any) -> float | None:
    value = (version.tags or {}).get("threshold")
    return float(value) if value not in (None, "", "None") else None


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
    tags = {
        "decision": record["decision"],
        "decision_reason": record["reason"][:4000],
        "decision_forced": str(record["forced"]).lower(),
        "decision_metrics": json.dumps(compared)[:4000],
        "compared_with": record["compared_with"] or "none",
        "decision_record": str(path),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def verdict(record: dict[str, Any]) -> str:
    """The one line a person reads at the end of the training run's log."""
    mine = record["challenger"]["metrics"].get(record["primary_metric"])
    shown = f" ({record['primary_metric']} {mine:.4f})" if isinstance(mine, float) else ""
    against = f" against champion v{record['compared_with']}" if record.get("compared_with") else ""
    return (
        f"VERDICT: {record['model']} v{record['version']}{shown} {record['decision'].upper()}{against}"
        f"{' (forced)' if record['forced'] else ''}: {record['reason']}"
    )


def rollback_requested(usecase: UseCase, target: int | str | None, reason: str, run: dict[str, str]) -> dict:
    """:func:`rollback` as the rollback DAG asks for it (``run``: who and which run); logs the verdict."""
    record = rollback(
        usecase,
        str(target) if target else None,
        reason,
        run.get("triggered_by") or "unknown",
        {"airflow_dag_id": run["airflow_dag_id"], "airflow_run_id": run["airflow_run_id"]},
    )
    moved = f"rolled back from v{record.get('from_version')}" if record.get("changed") else "nothing changed"
    log.info("VERDICT: %s champion is v%s (%s)", record["model"], record["version"], moved)
    return record


def rollback(usecase: UseCase, target: str | None, reason: str, who: str, context: dict | None = None) -> dict:
    """Make ``target`` (default: the version holding ``previous``) the champion again.

    The target must exist and load and score its logged input example. The
    demoted champion gets the alias ``rolled_back`` and ``previous`` is cleared
    when it was the target, so running the same rollback again changes nothing.
    If the champion moves while the target is checked, nothing changes.

    Raises:
        RollbackError: no such version, it does not load or score, or no target to default to.
    """
    import mlflow
    import mlflow.pyfunc

    client = tracking.configure()
    name = model_name(usecase)
    champion = alias_version(client, name, CHAMPION)
    if not target:
        target = alias_version(client, name, PREVIOUS)
        if target is None:
            if champion is not None and alias_version(client, name, ROLLED_BACK) is not None:
                log.info("no version holds '%s': the last rollback is done, v%s is champion", PREVIOUS, champion)
                return {
                    "kind": "rollback",
                    "model": name,
                    "version": champion,
                    "changed": False,
                    "reason": "nothing to do: already rolled back",
                }
            raise RollbackError(f"no version of '{name}' holds '{PREVIOUS}': name the version to roll back to")
    target = str(target).removeprefix("v")
    try:
        client.get_model_version(name, target)
    except mlflow.MlflowException:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        raise RollbackError(f"'{name}' has no version {target} (versions: {versions})") from None
    uri = f"models:/{name}/{target}"
    try:
        model = mlflow.pyfunc.load_model(uri)
        example = model.input_example
        if example is not None:
            model.predict(pd.DataFrame(example))
    except Exception as exc:
        raise RollbackError(f"{name} v{target} does not load or score: {type(exc).__name__}: {exc}") from None
    record: dict[str, Any] = {
        "kind": "rollback",
        "model": name,
        "version": target,
        "from_version": champion,
        "reason": reason,
        "by": who,
        "decided_at": dt.datetime.now(dt.UTC).isoformat(),
    } | (context or {})
    with named_lock("registry", name):
        current = alias_version(client, name, CHAMPION)
        if current != champion and current != target:
            raise RollbackError(
                f"the champion of '{name}' moved from v{champion} to v{current} during the rollback: "
                "nothing changed; check the registry and run it again"
            )
        record["from_version"] = current
        record["changed"] = current != target
        if current != target:
            if current is not None:
                client.set_registered_model_alias(name, ROLLED_BACK, current)
            client.set_registered_model_alias(name, CHAMPION, target)
            if alias_version(client, name, PREVIOUS) == target:
                client.delete_registered_model_alias(name, PREVIOUS)
    if not record["changed"]:
        log.info("v%s of %s is already champion: nothing changed", target, name)
        return record
    stamp = record["decided_at"].replace(":", "").replace("-", "")[:15]
    path = write_record(usecase, f"rollback-{stamp}-v{target}.json", record)
    for key, value in {
        "rollback_by": who,
        "rollback_reason": reason[:4000] or "(none given)",
        "rollback_at": record["decided_at"],
        "rollback_from": str(current),
        "rollback_record": str(path),
    }.items():
        client.set_model_version_tag(name, target, key, value)
    log.info("rolled %s back from v%s to v%s (%s, by %s)", name, current, target, reason, who)
    return record


def model_status(usecase: UseCase) -> dict[str, Any] | None:
    """Aliases of the use case's registered model and its latest decision, for ``mlops status``.

    None when nothing was ever trained (no local MLflow store and no server configured).
    """
    if tracking.uses_local_store() and not (tracking.mlflow_dir() / "mlflow.db").exists():
        return None
    import mlflow

    client = tracking.configure()
    name = model_name(usecase)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except mlflow.MlflowException:
        versions = []
    records = sorted(decisions_dir(usecase).glob("*.json"), key=lambda p: p.stat().st_mtime)
    latest = json.loads(records[-1].read_text()) if records else None
    return {
        "model": name,
        "versions": len(versions),
        "aliases": {alias: alias_version(client, name, alias) for alias in (CHAMPION, CHALLENGER, PREVIOUS)},
        "latest_decision": {
            k: latest.get(k) for k in ("kind", "version", "decision", "reason", "decided_at", "changed")
        }
        if latest
        else None,
    }
