"""What the DAG files of this project share: their arguments, assets, sensors and task glue.

A package inside the DAGs folder (``.airflowignore`` keeps the DAG processor out
of it), importable as ``dagkit`` wherever Airflow parses or runs the DAG files.
Light on purpose: DAG files import it at every parse; heavy libraries are only
imported inside the functions that tasks call.

- ``alerts``: alerts to the use case's HTTP receiver, from tasks and from failed runs
- ``arguments``: the ``@dag(...)`` arguments every DAG of a use case shares, timetables
- ``assets``: the assets DAGs publish and consume, and the intervals their events carry
- ``links``: extra links of task instances to what they produced
- ``context``: reading a task's context (connections, run facts) and failing it on bad input
- ``sensors``: the monitor's wait for the night's features
- ``usecases``: the use cases to build DAGs for (a broken file never hides the others)
"""

from dagkit.alerts import alert, alert_on
from dagkit.arguments import dag_arguments, default_args, interval_timetable, start_date
from dagkit.assets import (
    curated_asset,
    interval_extra,
    interval_params,
    intervals_extra,
    intervals_from_context,
    online_features_asset,
    parse_interval,
    predictions_asset,
)
from dagkit.context import run_facts, spark_target, sqlalchemy_url, task_errors
from dagkit.links import publish_links, with_links
from dagkit.usecases import usecases

__all__ = [
    "alert",
    "alert_on",
    "curated_asset",
    "dag_arguments",
    "default_args",
    "interval_extra",
    "interval_params",
    "interval_timetable",
    "intervals_extra",
    "intervals_from_context",
    "online_features_asset",
    "parse_interval",
    "predictions_asset",
    "publish_links",
    "run_facts",
    "spark_target",
    "sqlalchemy_url",
    "start_date",
    "task_errors",
    "usecases",
    "with_links",
]
