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

from mlops.dagkit import default_args, start_date, task_errors
from pipelines.config import UseCase, load_all


def build_rollback_dag(usecase: UseCase) -> None:
    @dag(
        dag_id=usecase.dag_id("rollback"),
        description=f"Move the {usecase.name} champion back to an earlier version",
        schedule=None,
        start_date=start_date(usecase),
        catchup=False,
        max_active_runs=1,
        tags=["mlops", usecase.name, "training"],
        default_args=default_args(usecase),
        doc_md=__doc__,
        params={
            "target_version": Param(
                None, type=["null", "integer"], minimum=1, description="Version to make champion (empty: 'previous')"
            ),
            "reason": Param("", type="string", description="Why (recorded on the version and in the decision log)"),
        },
    )
    def rollback() -> None:
        @task
        def move_champion() -> dict:
            import logging

            from pipelines.training.promotion import rollback as roll_back

            ctx = get_current_context()
            params, run = ctx["params"], ctx["dag_run"]
            who = getattr(run, "triggering_user_name", None) or "unknown"
            target = params.get("target_version")
            with task_errors():
                record = roll_back(
                    usecase,
                    str(target) if target else None,
                    params.get("reason") or "",
                    who,
                    {"airflow_dag_id": ctx["dag"].dag_id, "airflow_run_id": ctx["run_id"]},
                )
            logging.getLogger("airflow.task").info(
                "VERDICT: %s champion is v%s (%s)",
                record["model"],
                record["version"],
                f"rolled back from v{record.get('from_version')}" if record.get("changed") else "nothing changed",
            )
            return record

        move_champion()

    rollback()


for _usecase in load_all():
    if _usecase.training is not None:
        build_rollback_dag(_usecase)
