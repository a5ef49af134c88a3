"""
### `<use case>_rollout`: decide a running canary by hand

Only for use cases with `rollout.mode: canary`. Manual only: fill in the trigger
form with the action, `promote` (the canary becomes the champion for every entity
now) or `abort` (the canary is rolled back; the champion serves everyone), and the
reason. Who triggered the run, the reason and the run id go into the rollout record
(`reports/<use case>/decisions/rollout-v<version>.json`) and the version's tags.
With no canary running the run fails saying so, and nothing changes. The nightly
monitor (`<use case>_drift_monitor`, task `judge_canary`) decides on its own
otherwise: see docs/concepts/rollout.md.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import dag_arguments, usecases
from pipelines.config import UseCase


def build_rollout_dag(usecase: UseCase) -> None:
    @dag(
        schedule=None,
        **dag_arguments(
            usecase,
            "rollout",
            tag="training",
            description=f"Promote or abort the running canary of {usecase.name} by hand",
            doc_md=__doc__,
            params={
                "action": Param("promote", enum=["promote", "abort"], description="promote now, or abort"),
                "reason": Param("", type="string", minLength=1, description="Why (recorded with the decision)"),
            },
        ),
    )
    def rollout() -> None:
        @task
        def decide_canary() -> dict:
            from dagkit import run_facts, task_errors
            from pipelines.promotion.canary import override

            ctx = get_current_context()
            day = ctx["dag_run"].run_after.isoformat()  # when it was asked, for the record
            from dagkit.alerts import alert_canary

            with task_errors():
                done = override(usecase, ctx["params"]["action"], ctx["params"]["reason"], run_facts(ctx), day)
            alert_canary(usecase, done["version"], done["stage"], f"by {done['by']}: {ctx['params']['reason']}")
            return done

        decide_canary()

    rollout()


for _usecase in usecases("rollout", lambda u: u.rollout.mode == "canary"):
    build_rollout_dag(_usecase)
