"""
### `<use case>_train`: train candidates, register the best, let the gate decide

Runs weekly (`training.schedule` in the use case's YAML file), by hand from the
trigger form, or from the drift monitor (whose `conf` carries the reason and the
report). The training window ends at the run's data interval end, or at
`window_end` when given; only labels whose delay has passed by then are used.

1. **check_request**: the form's candidates exist, the window is valid.
2. **training_set**: Feast point-in-time join of the window's labels, written to
   `training/<use case>/...parquet` with its content hash.
3. **train**: one MLflow parent run, one nested run per candidate (a failing
   candidate is logged, the others go on); best on the validation days.
4. **register**: the best becomes a new version of the registered model, alias `challenger`.
5. **promote**: challenger vs `champion` on the newest holdout; the guarded alias
   move, the decision on the version's tags and in `reports/<use case>/decisions/`,
   the model card. The log ends with a one-line VERDICT.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import dag_arguments, interval_timetable, usecases, with_links
from pipelines.config import UseCase


def build_train_dag(usecase: UseCase) -> None:
    spec = usecase.training
    assert spec is not None

    @dag(
        schedule=interval_timetable(usecase, spec.schedule),
        **dag_arguments(
            usecase,
            "train",
            tag="training",
            description=f"Train {usecase.name} candidates, register the best, champion/challenger promotion",
            doc_md=__doc__,
            params={
                "window_days": Param(
                    spec.window_days,
                    type="integer",
                    minimum=3,
                    description="Days of labelled data to train on, ending at the window's end "
                    f"(training.window_days: {spec.window_days})",
                ),
                "candidates": Param(
                    list(spec.candidates),
                    type="array",
                    items={"type": "string"},
                    examples=list(spec.candidates),
                    description="Model families to train, each an MLflow run; the best on the validation days "
                    "goes to the gate (training.candidates)",
                ),
                "force_promote": Param(
                    False,
                    type="boolean",
                    description="Make the best candidate champion even if the gate rejects it. Recorded as forced, "
                    "with the reason, on the model version, in the decision log and the model card; it must "
                    "still load and score its input example",
                ),
                "reason": Param(
                    None,
                    type=["null", "string"],
                    description="Why you run it: recorded on the MLflow run, the model version and the decision "
                    "log (empty: 'manual')",
                ),
                "window_end": Param(
                    None, type=["null", "string"], format="date-time", description="End of the window (default: run's)"
                ),
                "drift_report": Param(None, type=["null", "string"], description="Set by the drift monitor"),
                "drifted_features": Param([], type="array", description="Set by the drift monitor"),
                "validation_days": Param(
                    None, type=["null", "integer"], minimum=1, description="Validation days (empty: the config's)"
                ),
                "holdout_days": Param(
                    None,
                    type=["null", "integer"],
                    minimum=1,
                    description="Holdout days the gate judges on (empty: config)",
                ),
            },
        ),
    )
    def train() -> None:
        @task
        def check_request() -> dict:
            """What to train on: the window and the candidates, checked before anything is written."""
            from dagkit import run_facts, task_errors
            from pipelines.training.run import plan_request

            ctx = get_current_context()
            default_end = ctx.get("data_interval_end") or ctx["dag_run"].run_after
            with task_errors():
                return plan_request(usecase, ctx["params"], default_end, run_facts(ctx)["trigger"])

        @task
        def training_set(plan: dict) -> dict:
            from dagkit import task_errors
            from pipelines.training.run import build_set

            with task_errors():
                return build_set(usecase, plan)

        @task
        def train_candidates(plan: dict, tset: dict) -> dict:
            from dagkit import publish_links, run_facts, task_errors
            from pipelines.reporting import links
            from pipelines.training.run import train_planned

            with task_errors():
                outcome = train_planned(usecase, plan, tset, run_facts(get_current_context()))
            publish_links({"MLflow run": links.mlflow_run(outcome["experiment_id"], outcome["parent_run_id"])})
            return outcome

        @task
        def register(outcome: dict) -> str:
            from dagkit import publish_links
            from pipelines.reporting import links
            from pipelines.stores.mlflow_store import model_name
            from pipelines.training.run import register_best

            version = register_best(usecase, outcome)
            publish_links({"Model version (MLflow)": links.mlflow_version(model_name(usecase), version)})
            return version

        @task
        def promote(version: str, tset: dict, outcome: dict, plan: dict) -> dict:
            from dagkit import publish_links, run_facts
            from dagkit.alerts import alert_gate
            from pipelines.reporting import links
            from pipelines.training.run import gate_version

            record = gate_version(usecase, version, tset, outcome, plan, run_facts(get_current_context()))
            alert_gate(usecase, record, plan)
            publish_links({
                "Model card": links.model_card(usecase.name, version),
                "Model version (MLflow)": links.mlflow_version(record["model"], version),
                "Model health": links.health(usecase.name),
            })  # fmt: skip
            return record

        plan = check_request()
        tset = training_set(plan)
        outcome = with_links(train_candidates(plan, tset), "MLflow run")
        version = with_links(register(outcome), "Model version (MLflow)")
        with_links(promote(version, tset, outcome, plan), "Model card", "Model version (MLflow)", "Model health")

    train()


for _usecase in usecases("train", lambda u: u.training):
    build_train_dag(_usecase)
