"""
### `<use case>_rollback`: make an earlier model version the champion again

Manual only. Fill in the trigger form: the target version (empty: the version
holding the alias `previous`) and the reason. The target must exist, load and
score its input example; then `champion` moves to it, the demoted version gets
`rolled_back`, and who/why/when go to the version's tags and to
`reports/<use case>/decisions/`. Running the same rollback again changes nothing.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import dag_arguments, usecases
from pipelines.config import UseCase


def build_rollback_dag(usecase: UseCase) -> None:
    @dag(
        schedule=None,
        **dag_arguments(
            usecase,
            "rollback",
            tag="training",
            description=f"Move the {usecase.name} champion back to an earlier version",
            doc_md=__doc__,
            params={
                "target_version": Param(
                    None,
                    type=["null", "integer"],
                    minimum=1,
                    description="Version to make champion (empty: 'previous')",
                ),
                "reason": Param("", type="string", description="Why (recorded on the version and in the decision log)"),
            },
        ),
    )
    def rollback() -> None:
        @task
        def move_champion() -> dict:
            from dagkit import run_facts, task_errors
            from pipelines.promotion.rollback import rollback_requested

            ctx = get_current_context()
            params, run = ctx["params"], run_facts(ctx)
            with task_errors():
                record = rollback_requested(usecase, params.get("target_version"), params.get("reason") or "", run)
            if record.get("changed"):
                from dagkit import alert

                alert(usecase, "rollback", f"{record['model']} champion rolled back from v{record.get('from_version')} "
                      f"to v{record['version']} by {run.get('triggered_by')}: {params.get('reason') or ''}",
                      version=record["version"])  # fmt: skip
            return record

        move_champion()

    rollback()


for _usecase in usecases("rollback", lambda u: u.training):
    build_rollback_dag(_usecase)
