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

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from mlops.dagkit import default_args, start_date, task_errors
from pipelines.config import UseCase, load_all


def build_train_dag(usecase: UseCase) -> None:
    spec = usecase.training
    assert spec is not None

    @dag(
        dag_id=usecase.dag_id("train"),
        description=f"Train {usecase.name} candidates, register the best, champion/challenger promotion",
        schedule=CronDataIntervalTimetable(spec.schedule, timezone=usecase.schedule.timezone),
        start_date=start_date(usecase),
        catchup=False,
        max_active_runs=1,
        tags=["mlops", usecase.name, "training"],
        default_args=default_args(usecase),
        doc_md=__doc__,
        params={
            "window_days": Param(spec.window_days, type="integer", minimum=3, description="Days of labelled data"),
            "candidates": Param(
                list(spec.candidates),
                type="array",
                items={"type": "string"},
                examples=list(spec.candidates),
                description="Candidates to train (from training.candidates)",
            ),
            "force_promote": Param(
                False,
                type="boolean",
                description="Promote even if the gate says no (recorded; must still load and score)",
            ),
            "reason": Param("", type="string", description="Why this run (recorded with the model)"),
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
    )
    def train() -> None:
        @task
        def check_request() -> dict:
            """What to train on: the window and the candidates, checked before anything is written."""
            from pipelines.training.train import check_candidates, window_end

            ctx = get_current_context()
            params, run = ctx["params"], ctx["dag_run"]
            with task_errors():
                candidates = check_candidates(usecase, params.get("candidates"))
            end = params.get("window_end") or (ctx.get("data_interval_end") or run.run_after).isoformat()
            with task_errors():
                window_end(end)
            trigger = str(run.run_type).split(".")[-1].lower()
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

        @task
        def training_set(plan: dict) -> dict:
            import datetime as dt

            from pipelines.training.dataset import build_training_data

            with task_errors():
                data = build_training_data(usecase, dt.datetime.fromisoformat(plan["window_end"]), plan["window_days"])
            return {
                "path": str(data.path),
                "rows": len(data.frame),
                "content_hash": data.content_hash,
                "missing_rows": data.missing_rows,
                "quarantined": data.quarantined,
            }

        @task
        def train_candidates(plan: dict, tset: dict) -> dict:
            from pathlib import Path

            from pipelines.training.dataset import read_training_data, with_split
            from pipelines.training.train import train_candidates as train_all

            ctx = get_current_context()
            tags = {
                "airflow_dag_id": ctx["dag"].dag_id,
                "airflow_run_id": ctx["run_id"],
                "trigger": plan["trigger"],
                "trigger_reason": plan["reason"],
                "force_promote": str(plan["force_promote"]).lower(),
            } | ({"drift_report": plan["drift_report"]} if plan["drift_report"] else {})
            with task_errors():
                split = with_split(usecase, plan.get("validation_days"), plan.get("holdout_days"))
                outcome = train_all(split, read_training_data(usecase, Path(tset["path"])), plan["candidates"], tags)
            return outcome.to_dict()

        @task
        def register(outcome: dict) -> str:
            from pipelines.training.promotion import register_challenger
            from pipelines.training.train import TrainingOutcome

            best = TrainingOutcome.from_dict(outcome).best_result()
            return register_challenger(
                usecase,
                best.model_uri,
                best.run_id,
                {"candidate": best.name, "threshold": str(best.threshold), "parent_run_id": outcome["parent_run_id"]},
            )

        @task
        def promote(version: str, tset: dict, outcome: dict, plan: dict) -> dict:
            import logging
            from pathlib import Path

            from pipelines.training import card, promotion
            from pipelines.training.dataset import read_training_data, split_by_time, with_split

            ctx = get_current_context()
            split = with_split(usecase, plan.get("validation_days"), plan.get("holdout_days")).training
            holdout = split_by_time(read_training_data(usecase, Path(tset["path"])).frame, split).holdout
            context = {
                "airflow_dag_id": ctx["dag"].dag_id,
                "airflow_run_id": ctx["run_id"],
                "trigger": plan["trigger"],
                "trigger_reason": plan["reason"],
                "training_run_id": outcome["parent_run_id"],
                "training_window_end": plan["window_end"],
                "training_set": tset["path"],
                "data_hash": tset["content_hash"],
            }
            record = promotion.gate(usecase, version, holdout, force=plan["force_promote"], context=context)
            card.publish(usecase, version, record, outcome["split"])
            logging.getLogger("airflow.task").info(promotion.verdict(record))
            return {k: record[k] for k in ("model", "version", "decision", "reason", "forced", "compared_with")}

        plan = check_request()
        tset = training_set(plan)
        outcome = train_candidates(plan, tset)
        version = register(outcome)
        promote(version, tset, outcome, plan)

    train()


for _usecase in load_all():
    if _usecase.training is not None:
        build_train_dag(_usecase)
