"""Staged rollout, the stored part: the ``canary`` alias, the rollout record, the nightly judgment.

Under ``rollout.mode: canary`` the gate gives a passing challenger the alias ``canary``
instead of ``champion`` (:func:`start`); batch inference then serves the canary's share
of the entities with it. Each night the monitor judges the canary on matured labels
(:func:`judge_night`): ``champion`` moves to it (stage ``full``), or ``canary`` is
removed (``rolled_back``). Every stage change and every night's judgment goes into
``reports/<use case>/decisions/rollout-v<version>.json`` before any alias moves, so a
crash in between is finished by the next reader (:func:`running`); the version's tags
say its stage.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.locks import named_lock
from pipelines.promotion import rollout
from pipelines.promotion.decisions import decisions_dir, write_record
from pipelines.stores import mlflow_store
from pipelines.stores.mlflow_store import CHAMPION

log = logging.getLogger(__name__)

CANARY = "canary"  # the registry alias of the version in canary


@dataclass(frozen=True)
class Canary:
    version: str
    rollout_id: str
    fraction: float
    started: str  # ISO datetime: the gate's day (the training window's end); it serves from then on
    champion: str | None  # the version it is compared with and replaces

    def days_running(self, night_end: dt.datetime) -> int:
        return (night_end - dt.datetime.fromisoformat(self.started)).days


def record_name(version: str) -> str:
    return f"rollout-v{version}.json"


def read_record(usecase: UseCase, version: str) -> dict[str, Any] | None:
    path = decisions_dir(usecase) / record_name(version)
    return json.loads(path.read_text()) if path.exists() else None


def _stage(stage: str, by: str, reason: str, day: str, **figures: Any) -> dict[str, Any]:
    return {"stage": stage, "by": by, "reason": reason, "day": day, **figures}


def start(client: Any, usecase: UseCase, version: str, expected_champion: str, day: str, reason: str) -> bool:
    """Put ``version`` in canary against ``expected_champion``, if that is still the champion.

    A canary already running is superseded (rolled back, saying by which version): one rollout at a time.
    Returns False, changing nothing, when the champion moved since it was read.
    """
    name = mlflow_store.model_name(usecase)
    spec = usecase.rollout
    with named_lock("registry", name):
        if mlflow_store.alias_version(client, name, CHAMPION) != expected_champion:
            return False
        old = mlflow_store.alias_version(client, name, CANARY)
        record = {
            "kind": "rollout",
            "model": name,
            "version": version,
            "rollout_id": rollout.rollout_id(name, version),
            "fraction": spec.canary_fraction,
            "champion": expected_champion,
            "started": day,
            "spec": spec.model_dump(),
            "stages": [_stage(rollout.CANARY_STAGE, "gate", reason, day, fraction=spec.canary_fraction)],
            "judgments": [],
        }
        write_record(usecase, record_name(version), record)
        client.set_registered_model_alias(name, CANARY, version)
    _tag(client, name, version, rollout.CANARY_STAGE, reason)
    if old is not None and old != version:
        superseded = f"superseded by v{version}, which passed the gate"
        _close(client, usecase, old, rollout.ROLLED_BACK_STAGE, "gate", superseded, day)
    share = f"{spec.canary_fraction:.0%}"
    log.info("%s v%s in canary for %s of the entities (champion v%s)", name, version, share, expected_champion)
    return True


def resume(client: Any, usecase: UseCase, version: str) -> None:
    """Finish a :func:`start` a crash cut short between its record and its alias (a retried gate)."""
    name = mlflow_store.model_name(usecase)
    record = read_record(usecase, version)
    if record is None or record["stages"][-1]["stage"] != rollout.CANARY_STAGE:
        return
    with named_lock("registry", name):
        if mlflow_store.alias_version(client, name, CANARY) is None:
            client.set_registered_model_alias(name, CANARY, version)
    _tag(client, name, version, rollout.CANARY_STAGE, record["stages"][-1]["reason"])


def running(client: Any, usecase: UseCase) -> Canary | None:
    """The canary of the use case's model, or None; a stage change a crash cut short is finished first."""
    name = mlflow_store.model_name(usecase)
    version = mlflow_store.alias_version(client, name, CANARY)
    if version is None:
        return None
    record = read_record(usecase, version)
    if record is None:
        log.warning("%s v%s holds '%s' without a rollout record: not served as a canary", name, version, CANARY)
        return None
    stage = record["stages"][-1]["stage"]
    if stage != rollout.CANARY_STAGE:
        _apply(client, usecase, record)
        return None
    return Canary(version, record["rollout_id"], float(record["fraction"]), record["started"], record["champion"])


def _apply(client: Any, usecase: UseCase, record: dict[str, Any]) -> None:
    """Move the aliases as the record's last stage says (idempotent)."""
    name, version = record["model"], record["version"]
    if record["stages"][-1]["stage"] == rollout.FULL_STAGE:
        champion = mlflow_store.alias_version(client, name, CHAMPION)
        if champion != version and not mlflow_store.move_champion(client, name, version, record.get("champion")):
            log.warning("%s: the champion moved to v%s during v%s's canary; it stays", name, champion, version)
    with named_lock("registry", name):
        if mlflow_store.alias_version(client, name, CANARY) == version:
            client.delete_registered_model_alias(name, CANARY)
    last = record["stages"][-1]
    _tag(client, name, version, last["stage"], last["reason"])


def _close(
    client: Any, usecase: UseCase, version: str, stage: str, by: str, reason: str, day: str, **figures: Any
) -> dict:
    """Record the end of ``version``'s canary (``full`` or ``rolled_back``), then move the aliases."""
    record = read_record(usecase, version) or {
        "kind": "rollout", "model": mlflow_store.model_name(usecase), "version": version, "stages": [], "judgments": [],
    }  # fmt: skip
    if record["stages"] and record["stages"][-1]["stage"] != rollout.CANARY_STAGE:
        return record  # ended already
    record["stages"].append(_stage(stage, by, reason, day, **figures))
    write_record(usecase, record_name(version), record)
    _apply(client, usecase, record)
    log.info("%s v%s: %s by %s: %s", record["model"], version, stage, by, reason)
    return record


def finish(
    client: Any, usecase: UseCase, canary: Canary, action: str, by: str, reason: str, day: str, **figures: Any
) -> dict:
    """End the canary: ``promote`` (stage full: it becomes the champion) or ``rollback``."""
    stage = rollout.FULL_STAGE if action == rollout.PROMOTE else rollout.ROLLED_BACK_STAGE
    return _close(client, usecase, canary.version, stage, by, reason, day, **figures)


class NoCanary(BadInput):
    """A manual override of a canary when none is running."""


def _required(usecase: UseCase, otherwise: str) -> tuple[Any, Canary]:
    """The registry client and the running canary; NoCanary (saying ``otherwise``) without one."""
    client = mlflow_store.configure()
    current = running(client, usecase)
    if current is None:
        raise NoCanary(f"no canary of {mlflow_store.model_name(usecase)} is running: {otherwise}")
    return client, current


def describe(usecase: UseCase) -> str | None:
    """The running canary as a retrain decision names it (None: none, or not a canary use case)."""
    if usecase.rollout.mode != "canary":
        return None
    current = running(mlflow_store.configure(), usecase)
    return f"the canary of v{current.version} (since {current.started[:10]})" if current else None


def override(usecase: UseCase, action: str, reason: str, run: dict[str, str], day: str) -> dict[str, Any]:
    """A person's decision on the running canary (the rollout DAG's form): ``promote`` now or ``abort``.

    Raises:
        NoCanary: no canary is running (nothing changes).
        ValueError: an unknown action or an empty reason.
    """
    if action not in ("promote", "abort"):
        raise ValueError(f"action must be 'promote' or 'abort', not {action!r}")
    if not reason.strip():
        raise ValueError("give a reason: it is recorded with the decision")
    client, current = _required(usecase, f"nothing to {action}")
    who = f"manual: {run.get('triggered_by') or 'unknown'} ({run.get('airflow_run_id', '')})"
    record = finish(client, usecase, current, rollout.PROMOTE if action == "promote" else rollout.ROLLBACK, who,
                    reason.strip(), day)  # fmt: skip
    last = record["stages"][-1]
    log.info("VERDICT: %s v%s %s by %s: %s", record["model"], current.version, last["stage"], who, last["reason"])
    return {"model": record["model"], "version": current.version, "stage": last["stage"], "by": who}


def approval_request(usecase: UseCase) -> dict[str, str]:
    """What the person asked to approve reads: the canary's newest figures and its gate decision.

    Raises:
        NoCanary: no canary is running.
    """
    _, current = _required(usecase, "nothing to approve")
    record = read_record(usecase, current.version) or {}
    judgments = record.get("judgments") or []
    figures = (record.get("approval") or {}).get("judgment") or (judgments[-1]["reason"] if judgments else "none yet")
    gate = decisions_dir(usecase) / f"v{current.version}.json"
    gate_reason = json.loads(gate.read_text()).get("reason", "") if gate.exists() else "(no gate record)"
    spec = usecase.rollout
    body = "\n".join(
        [
            f"**{usecase.name} v{current.version}** has served {current.fraction:.0%} of the entities since "
            f"{current.started[:10]} against champion v{current.champion}.",
            "",
            f"**The canary's live figures:** {figures}",
            "",
            f"**The gate's decision** (`{gate}`): {gate_reason}",
            "",
            f"Promote: it serves every entity. Roll back: the champion serves everyone again. Unanswered after "
            f"{spec.approval_timeout_hours:g} hours: {spec.approval_default}.",
        ]
    )
    subject = f"Promote {usecase.name} v{current.version} from canary to every entity?"
    return {"subject": subject, "body": body, "version": current.version}


def answer(usecase: UseCase, action: str, answered: dict[str, Any] | None, day: str) -> dict[str, Any]:
    """Apply a person's answer to an approval request (``answered``: who and when; None: it timed out).

    Raises:
        NoCanary: the canary ended meanwhile (nothing changes).
    """
    client, current = _required(usecase, "the answer changes nothing")
    user = (answered or {}).get("by") or {}
    who = f"approval: {user.get('name') or user.get('id')}" if user else "approval: timed out"
    when = (answered or {}).get("at") or day
    reason = ("approved" if action == rollout.PROMOTE else "rejected") + f" at {when}" + (
        "" if user else f" (no answer: rollout.approval_default is {usecase.rollout.approval_default})"
    )  # fmt: skip
    record = finish(client, usecase, current, action, who, reason, day, answered_by=user or None, answered_at=when)
    mlflow_store.set_version_tags(client, record["model"], current.version, {"rollout_answered_by": who})
    return {"model": record["model"], "version": current.version, "stage": record["stages"][-1]["stage"], "by": who}


def _tag(client: Any, name: str, version: str, stage: str, reason: str) -> None:
    mlflow_store.set_version_tags(client, name, version, {"rollout_stage": stage, "rollout_reason": reason[:4000]})


def judge_night(usecase: UseCase, night_end: dt.datetime) -> dict[str, Any]:
    """Judge the running canary on the labels matured by ``night_end``; promote or roll it back when
    the evidence says so. The judgment is recorded (one per night: a rerun replaces it)."""
    from pipelines.monitoring import data

    client = mlflow_store.configure()
    canary = running(client, usecase)
    night = night_end.isoformat()
    if canary is None:
        return {"night": night, "version": None, "action": "none", "reason": "no canary is running",
                "approval_run_id": None}  # fmt: skip
    spec = usecase.rollout
    matured_end = night_end - dt.timedelta(days=usecase.label.delay_days)
    days = (matured_end - dt.datetime.fromisoformat(canary.started)).days
    comparison = rollout.Comparison(metric=_primary(usecase), confidence=spec.confidence)
    if days > 0:
        served, _, _ = data.matured(usecase, night_end, days)
        shadow, _, _ = data.matured(usecase, night_end, days, kind="shadow")
        name = mlflow_store.model_name(usecase)
        thresholds = tuple(
            mlflow_store.decision_threshold(client.get_model_version(name, v)) if v else None
            for v in (canary.version, canary.champion)
        )
        paired = rollout.pairs(served, shadow.drop(columns=[data.TARGET]), canary.version)
        comparison = rollout.compare(paired, usecase.task, _primary(usecase), thresholds, spec)
    action, reason = rollout.judge(comparison, spec, canary.days_running(night_end))
    record = read_record(usecase, canary.version)
    assert record is not None
    asked = record.get("approval")
    if asked or (action == rollout.PROMOTE and spec.approval == "required"):
        # A person decides the step to full: asked once (the rollout DAG's run), then waited for.
        asked = asked or {"asked": night, "run_id": f"approval__v{canary.version}", "judgment": reason}
        record["approval"] = asked
        action = rollout.APPROVAL
        reason = f"waiting since {asked['asked'][:10]} for a person's answer ({usecase.dag_id('rollout')}): {reason}"
    judgment = {"night": night, "version": canary.version, "action": action, "reason": reason,
                "comparison": comparison.to_dict(), "approval_run_id": asked and asked["run_id"]}  # fmt: skip
    record["judgments"] = [j for j in record["judgments"] if j["night"] != night] + [judgment]
    write_record(usecase, record_name(canary.version), record)
    if action in (rollout.PROMOTE, rollout.ROLLBACK):
        finish(client, usecase, canary, action, "monitor", reason, night, comparison=comparison.to_dict())
    log.info("%s canary v%s, night %s: %s (%s)", usecase.name, canary.version, night[:10], action, reason)
    return judgment


def judgment_of_night(usecase: UseCase, night_end: dt.datetime) -> dict[str, Any] | None:
    """The canary judgment recorded for the night ending at ``night_end`` (None: no canary was judged),
    its action the stage the canary reached that night when it ended (``full``, ``rolled_back``)."""
    night = night_end.isoformat()
    for path in sorted(decisions_dir(usecase).glob(record_name("*"))):
        record = json.loads(path.read_text())
        for judgment in record.get("judgments") or []:
            if judgment["night"] == night:
                return judgment
    return None


def _primary(usecase: UseCase) -> str:
    return usecase.training.primary_metric if usecase.training else "roc_auc"
