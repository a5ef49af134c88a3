"""
### `<use case>_batch_inference`: a score for every active entity, from the pinned champion

Runs when the features DAG has materialized an interval (data-aware scheduling on
the online-features Asset), or by hand for any past interval (trigger form).

1. **pin_models**: resolves `champion` once (and `challenger`, when it is another
   version) and checks they load; later tasks use these version numbers, so a
   promotion during the run cannot mix two models in one batch.
2. **score**: for each interval, reads the features of the entities active in it
   as of its end through the feature service the model was trained with, in chunks,
   checks them against the model's signature, scores, and replaces the interval's
   rows of `predictions` (warehouse connection, one transaction) and its Parquet
   partition; the challenger's scores go to `shadow_predictions`. Entities without
   features are counted and listed in `predictions/<use case>/skipped/`.
   Emits the predictions Asset.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from mlops.dagkit import (
    default_args,
    interval_params,
    online_features_asset,
    predictions_asset,
    start_date,
    task_errors,
)
from pipelines.config import UseCase, load_all


def build_inference_dag(usecase: UseCase) -> None:
    assert usecase.inference is not None

    @dag(
        dag_id=usecase.dag_id("batch_inference"),
        description=f"Score every active {usecase.name} entity with the pinned champion; shadow-score the challenger",
        schedule=[online_features_asset(usecase.name)],
        start_date=start_date(usecase),
        catchup=False,
        max_active_runs=1,
        tags=["mlops", usecase.name, "inference"],
        default_args=default_args(usecase),
        doc_md=__doc__,
        params=interval_params(),
    )
    def batch_inference() -> None:
        @task
        def pin_models() -> dict:
            import logging

            from pipelines.errors import BadInput
            from pipelines.inference.batch import pin

            with task_errors():
                champion = pin(usecase)
            try:  # shadow scoring is best effort: a broken challenger never blocks the champion's scores
                challenger = pin(usecase, "challenger")
            except BadInput as exc:
                logging.getLogger(__name__).warning("no shadow scoring this run: %s", exc)
                challenger = None
            assert champion is not None
            return {"champion": champion.to_dict(), "challenger": challenger.to_dict() if challenger else None}

        @task(outlets=[predictions_asset(usecase.name)])
        def score(models: dict) -> list[dict]:
            from mlops.dagkit import intervals_from_context, parse_interval, sqlalchemy_url
            from pipelines.inference.batch import PinnedModel, score_interval

            ctx = get_current_context()
            champion = PinnedModel(**models["champion"])
            challenger = PinnedModel(**models["challenger"]) if models["challenger"] else None
            url = sqlalchemy_url(usecase.inference.connection_id)
            done = []
            for start, end in (parse_interval(i) for i in intervals_from_context(ctx)):
                with task_errors():
                    outcome = score_interval(usecase, champion, start, end, url, ctx["run_id"], challenger)
                done.append(outcome.summary())
            return done

        score(pin_models())

    batch_inference()


for _usecase in load_all():
    if _usecase.inference is not None and _usecase.training is not None:
        build_inference_dag(_usecase)
