"""The use cases DAG files build DAGs for."""

from __future__ import annotations

import os
from collections.abc import Callable

from airflow.sdk import get_parsing_context

from pipelines.config import UseCase, scan

# Set by the in-process runner (mlops/inprocess.py) while DAG.test re-parses the DAGs folder.
ONLY_DAG_ENV = "MLOPS_ONLY_DAG"


def usecases(stage: str, having: Callable[[UseCase], object] | None = None) -> list[UseCase]:
    """The use cases to build the ``<use case>_<stage>`` DAG for: every one whose file loads (and
    that has what ``having`` asks for).

    A file that does not load is left out here, so the other use cases keep their
    DAGs; ``dags/config_errors.py`` turns it into an import error that names the
    file and its bad fields in the Airflow UI.

    When a worker parses a file to run one task, Airflow names the task's DAG in the
    parsing context, and only that DAG is built (Airflow's documented optimization of
    parsing at execution); ``MLOPS_ONLY_DAG`` does the same for the in-process runner.
    """
    only = get_parsing_context().dag_id or os.environ.get(ONLY_DAG_ENV) or None
    return [u for u in scan().usecases if (having is None or having(u)) and (only is None or u.dag_id(stage) == only)]
