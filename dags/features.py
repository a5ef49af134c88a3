"""
### `<use case>_features`: daily features, offline and online, from the curated activity

Runs when ingestion publishes the use case's curated activity (data-aware
scheduling on its Asset), so it never sees a quarantined partition. Each
triggering ingestion names its interval; several queued ones are processed one
interval at a time. A manual run names its interval in the trigger form.

1. **build_features**: features as of each interval's end for the customers
   active in it, from the curated partitions of the history window, written to
   `features/<use case>/<dataset>/<day>.parquet` (atomic, unchanged on rerun); on the
   Spark cluster of the `mlops_spark` connection under `engine: spark`.
2. **apply_definitions**: `feast apply` of the objects derived from the config,
   only when they changed.
3. **materialize**: into the online store, one interval at a time, up to each
   interval's end (never "now"). Emits the online features Asset.
4. **check_skew**: for a sample of the last interval's customers, the online
   features read through the feature service must equal the offline ones at the
   same time; any difference fails the run, naming the customer and feature.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from dagkit import curated_asset, dag_arguments, interval_params, online_features_asset, usecases
from pipelines.config import UseCase


def build_features_dag(usecase: UseCase) -> None:
    assert usecase.features is not None

    @dag(
        schedule=[curated_asset(usecase.name, usecase.features.dataset)],
        **dag_arguments(
            usecase,
            "features",
            description=f"Build, apply and materialize {usecase.name} features; check online/offline skew",
            max_active_runs=1,  # one writer of the Feast registry and online store at a time
            doc_md=__doc__,
            params=interval_params(),
        ),
    )
    def features() -> None:
        @task
        def intervals_to_build() -> list[list[str]]:
            """The intervals the triggering ingestions published (or the one given by hand), plus
            the later ones whose rolling windows contain them."""
            from dagkit import intervals_from_context
            from pipelines.features.build import dependent_intervals

            return dependent_intervals(usecase, intervals_from_context(get_current_context()))

        @task
        def build_features(intervals: list[list[str]]) -> list[dict]:
            from dagkit import spark_target, task_errors
            from pipelines.features.build import build_intervals

            with task_errors():
                return build_intervals(usecase, intervals, spark_target(usecase))

        @task
        def apply_definitions() -> list[str]:
            from pipelines.features.definitions import apply_definitions as apply

            return apply(usecase)

        @task(outlets=[online_features_asset(usecase.name)])
        def materialize(intervals: list[list[str]]) -> int:
            from dagkit import intervals_extra, parse_interval
            from pipelines.features.materialize import materialize_intervals

            count = materialize_intervals(usecase, [parse_interval(i) for i in intervals])
            # Consumers (batch inference) learn which intervals now have served features.
            asset = online_features_asset(usecase.name)
            get_current_context()["outlet_events"][asset].extra = intervals_extra(intervals)
            return count

        @task
        def check_skew(intervals: list[list[str]]) -> int:
            from dagkit import parse_interval
            from pipelines.features.materialize import check_interval_skew

            return check_interval_skew(usecase, *parse_interval(intervals[-1]))

        intervals = intervals_to_build()
        built = build_features(intervals)
        applied = apply_definitions()
        loaded = materialize(intervals)
        built >> applied >> loaded >> check_skew(intervals)

    features()


for _usecase in usecases("features", lambda u: u.features):
    build_features_dag(_usecase)
