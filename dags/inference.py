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
   features are counted and listed in `predictions/<use case>/skipped/`. Under
   `engine: spark` the scores come from `spark_udf` on the `mlops_spark` cluster.
   Emits the predictions Asset.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from dagkit import dag_arguments, interval_params, online_features_asset, predictions_asset, usecases, with_links
from pipelines.config import UseCase


def build_inference_dag(usecase: UseCase) -> None:
    assert usecase.inference is not None

    @dag(
        schedule=[online_features_asset(usecase.name)],
        **dag_arguments(
            usecase,
            "batch_inference",
            tag="inference",
            description=f"Score every active {usecase.name} entity with the pinned champion; "
            "shadow-score the challenger",
            doc_md=__doc__,
            params=interval_params(),
        ),
    )
    def batch_inference() -> None:
        @task
        def pin_models() -> dict:
            """The champion (a failure without one) and the challenger (best effort), pinned for this run."""
            from dagkit import task_errors
            from pipelines.inference.batch import pin_models as pin

            with task_errors():
                return pin(usecase)

        @task(outlets=[predictions_asset(usecase.name)])
        def score(models: dict) -> list[dict]:
            from dagkit import (
                intervals_from_context,
                parse_interval,
                publish_links,
                spark_target,
                sqlalchemy_url,
                task_errors,
            )
            from pipelines.inference.batch import score_intervals
            from pipelines.reporting import links

            ctx = get_current_context()
            url = sqlalchemy_url(usecase.inference.connection_id)
            intervals = intervals_from_context(ctx)
            with task_errors():
                scored = score_intervals(usecase, models, intervals, url, ctx["run_id"], spark_target(usecase))
            if intervals:  # the newest day scored
                publish_links({"Lineage": links.lineage(usecase.name, parse_interval(intervals[-1])[0].date())})
            return scored

        with_links(score(pin_models()), "Lineage")

    batch_inference()


for _usecase in usecases("batch_inference", lambda u: u.inference and u.training):
    build_inference_dag(_usecase)
