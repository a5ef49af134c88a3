"""
### `<use case>_drift_monitor`: nightly drift report, and a retrain when the evidence is strong

Runs every night (`monitoring.schedule` in the use case's YAML file) for the day
that just ended.

1. **wait_for_day**: waits (reschedule mode, up to `monitoring.wait_hours`) until
   the day's features exist; skips with a message when there is no champion yet or
   no entity was active in the current window.
2. **measure**: Evidently reports of the current days against the champion's
   training window (data drift of every model feature, drift of the champion's
   scores), the champion's live metric on the days whose labels have matured, the
   challenger's from shadow scoring. HTML and JSON in
   `reports/<use case>/drift/<day>.*`, a run in MLflow's `<use case>_monitoring`
   experiment, a row in the warehouse's `drift_history`.
3. **judge_canary** (only under `rollout.mode: canary`): the running canary's
   matured live metric against the champion's on the same entities and days;
   promotes it to every entity, rolls it back, or waits (recorded in
   `reports/<use case>/decisions/rollout-v<version>.json`). Under
   `rollout.approval: required` a promotion is asked of a person instead
   (**ask_for_approval** triggers `<use case>_rollout` once per canary).
4. **decide**: the retrain policy (thresholds, cooldown, a training run in flight,
   labels of the new regime) gives one decision, recorded in `retrain_decisions`.
5. **retrain_needed** / **trigger_retrain**: only for a `triggered` decision, an
   explicit run of `<use case>_train` whose `conf` carries the reason, the report,
   the drifted features and the window (its run id is the decision's dedupe key, so
   a retried trigger finds the run instead of starting another). The retrain goes
   through the normal promotion gate. No retrain is triggered while a canary runs.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, get_current_context, task

from dagkit import dag_arguments, interval_timetable, usecases, with_links
from dagkit.sensors import DayReadySensor
from pipelines.config import UseCase


def build_monitor_dag(usecase: UseCase) -> None:
    spec = usecase.monitoring
    assert spec is not None
    train_dag_id = usecase.dag_id("train")

    @dag(
        schedule=interval_timetable(usecase, spec.schedule),
        **dag_arguments(
            usecase,
            "drift_monitor",
            tag="monitoring",
            description=f"Nightly drift report of {usecase.name}'s champion; triggers {train_dag_id} on evidence",
            doc_md=__doc__,
        ),
    )
    def drift_monitor() -> None:
        @task
        def measure() -> dict:
            from dagkit import publish_links, sqlalchemy_url, task_errors
            from pipelines.monitoring.monitor import measure_summary
            from pipelines.reporting import links

            ctx = get_current_context()
            url = sqlalchemy_url(usecase.inference.connection_id)
            with task_errors():
                summary = measure_summary(
                    usecase, ctx["data_interval_start"], ctx["data_interval_end"], url, ctx["run_id"]
                )
            report = summary["report_html"]
            publish_links({"Drift report": report and links.drift_report(usecase.name, report)})
            return summary

        @task(multiple_outputs=True)
        def decide(measured: dict) -> dict:
            from dagkit import sqlalchemy_url
            from pipelines.monitoring.monitor import decide_night

            ctx = get_current_context()
            in_flight = ctx["ti"].get_dr_count(dag_id=train_dag_id, states=["queued", "running"])
            url = sqlalchemy_url(usecase.inference.connection_id)
            decision = decide_night(usecase, ctx["data_interval_end"], url, in_flight)
            if decision["action"] == "triggered":
                from dagkit import alert

                message = f"{usecase.name}: retrain {decision['run_id']}: {decision['reason']}"
                alert(usecase, "retrain_triggered", message, run_id=decision["run_id"])
            return decision

        @task(multiple_outputs=True)
        def judge_canary() -> dict:
            from dagkit.alerts import alert_canary
            from pipelines.promotion.canary import judge_night

            judged = judge_night(usecase, get_current_context()["data_interval_end"])
            stage = {"promote": "full", "rollback": "rolled_back"}.get(judged["action"], "")
            alert_canary(usecase, judged.get("version"), stage, judged["reason"])
            return judged

        @task.short_circuit
        def retrain_needed(action: str) -> bool:
            return action == "triggered"

        wait = DayReadySensor(
            task_id="wait_for_day",
            usecase=usecase,
            poke_interval=300,
            timeout=spec.wait_hours * 3600,
            mode="reschedule",
            doc_md="Waits for the night's features; skips without a champion or without active entities.",
        )
        measured = with_links(measure(), "Drift report")
        wait >> measured
        decision = decide(measured)
        if usecase.rollout.mode == "canary":  # judged before the night's retrain decision, which it informs
            judged = judge_canary()
            measured >> judged >> decision
            if usecase.rollout.approval == "required":  # the step to full waits for a person's answer

                @task.short_circuit
                def approval_needed(action: str) -> bool:
                    return action == "approval"

                approval_needed(judged["action"]) >> TriggerDagRunOperator(
                    task_id="ask_for_approval",
                    trigger_dag_id=usecase.dag_id("rollout"),
                    trigger_run_id=judged["approval_run_id"],
                    conf={"action": "approval", "reason": judged["reason"]},
                    skip_when_already_exists=True,  # one request per canary: later nights find it
                )
        retrain_needed(decision["action"]) >> TriggerDagRunOperator(
            task_id="trigger_retrain",
            trigger_dag_id=train_dag_id,
            trigger_run_id=decision["run_id"],
            conf=decision["conf"],
            skip_when_already_exists=True,
            retries=usecase.schedule.retries,
            retry_delay=dt.timedelta(minutes=usecase.schedule.retry_delay_minutes),
        )

    drift_monitor()


for _usecase in usecases("drift_monitor", lambda u: u.monitoring):
    build_monitor_dag(_usecase)
