"""
### `<use case>_ingest`: land each day of source data in the curated zone, validated

One DAG per file in `configs/`. Each run covers exactly its data interval
`[data_interval_start, data_interval_end)`. For every dataset of the use case a
task reads the interval from the `mlops_source` connection in chunks, validates
the rows with the dataset's Great Expectations suite (`expectations/`), and then

* **passes**: writes `curated/<use case>/<dataset>/<day>.parquet` atomically and
  emits the dataset's curated Asset; a rerun with the same rows changes nothing;
* **fails a critical expectation**: writes the rows to `quarantine/` with the
  validation result and fails *without retrying*, naming each failed
  expectation, column and count. What was curated before stays as it was.

Warning-level expectations are logged and recorded but do not stop the run. An
empty interval is written as an empty partition marked as such, or, with the
dataset's `late_after_hours`, waited for until that deadline, then alerted
(`late_data`) and failed, curating nothing. An interval that
has not ended is refused; one that ended less than `lateness_minutes` ago waits
(rescheduled, holding no worker). A new read that would empty a curated partition
or shrink it by more than `max_shrink` stops unless the form's `allow_shrink` is on. Data Docs:
`$MLOPS_HOME/reports/data_docs/index.html`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from dagkit import curated_asset, dag_arguments, interval_timetable, usecases, with_links
from pipelines.config import UseCase


def build_ingest_dag(usecase: UseCase) -> None:
    @dag(
        schedule=interval_timetable(usecase),
        **dag_arguments(
            usecase,
            "ingest",
            description=f"Ingest and validate {usecase.name} source data, one interval at a time",
            catchup=usecase.schedule.catchup,
            max_active_runs=4,
            doc_md=__doc__,
            params={
                "allow_shrink": Param(
                    False,
                    type="boolean",
                    description="Let this run replace a curated partition with a read that has far fewer rows "
                    "(or none): by default such a run stops and changes nothing (max_shrink in the use case's "
                    "YAML). The replaced partition is kept under replaced/.",
                ),
            },
        ),
    )
    def ingest() -> None:
        for dataset in usecase.source.datasets:

            @task(task_id=f"ingest_{dataset}", outlets=[curated_asset(usecase.name, dataset)])
            def ingest_dataset(dataset: str = dataset) -> dict:
                """Read, validate and publish one dataset's partition for this interval."""
                import datetime as dt

                from dagkit import alert_on, interval_extra, publish_links, sqlalchemy_url, task_errors
                from pipelines.ingestion.ingest import LateData, QuarantinedPartition, ingest_interval
                from pipelines.reporting import links

                ctx = get_current_context()
                start, end = ctx["data_interval_start"], ctx["data_interval_end"]
                # Bad data fails at once (retrying cannot help), after its alert; an unfinished interval waits.
                with (
                    task_errors(),
                    alert_on(usecase, QuarantinedPartition, "quarantine"),
                    alert_on(usecase, LateData, "late_data"),
                ):
                    result = ingest_interval(
                        sqlalchemy_url(usecase.source.connection_id),
                        usecase,
                        dataset,
                        start,
                        end,
                        allow_shrink=bool(ctx["params"].get("allow_shrink")),
                        now=dt.datetime.now(dt.UTC),  # only to tell whether the interval is over
                    )
                # Consumers (the features DAG) learn which interval was published.
                ctx["outlet_events"][curated_asset(usecase.name, dataset)].extra = interval_extra(start, end)
                summary = result.summary()
                publish_links(
                    {"Validation (Data Docs)": summary["data_docs"] and links.data_docs(summary["data_docs"])}
                )
                return summary

            with_links(ingest_dataset(), "Validation (Data Docs)")

    ingest()


for _usecase in usecases("ingest"):
    build_ingest_dag(_usecase)
