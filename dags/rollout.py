"""
### `<use case>_rollout`: decide a running canary by hand, or ask a person to

Only for use cases with `rollout.mode: canary`. Two ways in:

* **By hand** (trigger form): `promote` (the canary becomes the champion for every
  entity now) or `abort` (rolled back; the champion serves everyone), with a reason.
* **Approval** (`rollout.approval: required`): when the nightly monitor would promote
  the canary it triggers this DAG with `action: approval`. `ask_approval`, Airflow's
  human-in-the-loop branch operator, waits (holding no worker) in the UI's Required
  Actions for one of `rollout.approvers` (empty: anyone who may run the DAG), showing
  the canary's figures and its gate decision: **Promote** runs `promote_canary`,
  **Roll back** runs `roll_back_canary`; unanswered after `approval_timeout_hours`,
  `approval_default` is taken.

Who decided, why and when go into the rollout record
(`reports/<use case>/decisions/rollout-v<version>.json`) and the version's tags. With
no canary running the run fails saying so, and nothing changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import dag_arguments, usecases
from pipelines.config import UseCase


def build_rollout_dag(usecase: UseCase) -> Any:
    spec = usecase.rollout
    approval = spec.approval == "required"
    actions = ["promote", "abort", *(["approval"] if approval else [])]

    @dag(
        schedule=None,
        **dag_arguments(
            usecase,
            "rollout",
            tag="training",
            description=f"Promote or abort the running canary of {usecase.name}, by hand or by a person's approval",
            doc_md=__doc__,
            params={
                "action": Param("promote", enum=actions, description="promote now, abort, or ask for approval"),
                "reason": Param("", type="string", minLength=1, description="Why (recorded with the decision)"),
            },
        ),
    )
    def rollout() -> None:
        @task
        def decide_canary() -> dict:
            from dagkit import run_facts, task_errors
            from dagkit.alerts import alert_canary
            from pipelines.promotion.canary import override

            ctx = get_current_context()
            day = ctx["dag_run"].run_after.isoformat()  # when it was asked, for the record
            with task_errors():
                done = override(usecase, ctx["params"]["action"], ctx["params"]["reason"], run_facts(ctx), day)
            alert_canary(usecase, done["version"], done["stage"], f"by {done['by']}: {ctx['params']['reason']}")
            return done

        if not approval:
            decide_canary()
            return

        from dagkit.approval import RolloutApproval

        @task.branch
        def route() -> str:
            return "prepare_approval" if get_current_context()["params"]["action"] == "approval" else "decide_canary"

        @task
        def prepare_approval() -> dict:
            from dagkit import alert, task_errors
            from pipelines.promotion.canary import approval_request

            with task_errors():
                request = approval_request(usecase)
            alert(usecase, "approval_waiting", request["subject"], version=request["version"])
            return request

        def act(action: str) -> dict:
            from dagkit import task_errors
            from dagkit.alerts import alert_canary
            from pipelines.promotion.canary import answer

            ctx = get_current_context()
            answered = ctx["ti"].xcom_pull(task_ids="ask_approval", key="answer")
            with task_errors():
                done = answer(usecase, action, answered, ctx["dag_run"].run_after.isoformat())
            alert_canary(usecase, done["version"], done["stage"], f"by {done['by']}")
            return done

        @task
        def promote_canary() -> dict:
            return act("promote")

        @task
        def roll_back_canary() -> dict:
            return act("rollback")

        ask = RolloutApproval(
            task_id="ask_approval",
            subject="{{ ti.xcom_pull(task_ids='prepare_approval')['subject'] }}",
            body="{{ ti.xcom_pull(task_ids='prepare_approval')['body'] }}",
            options=["Promote", "Roll back"],
            options_mapping={"Promote": "promote_canary", "Roll back": "roll_back_canary"},
            defaults=["Promote" if spec.approval_default == "promote" else "Roll back"],
            response_timeout=dt.timedelta(hours=spec.approval_timeout_hours),
            assigned_users=[{"id": user, "name": user} for user in spec.approvers] or None,
        )
        prepared = prepare_approval()
        route() >> [decide_canary(), prepared]
        prepared >> ask >> [promote_canary(), roll_back_canary()]

    return rollout()


for _usecase in usecases("rollout", lambda u: u.rollout.mode == "canary"):
    build_rollout_dag(_usecase)
