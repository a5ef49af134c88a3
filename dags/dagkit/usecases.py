"""The use cases DAG files build DAGs for."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.config import UseCase, scan


def usecases(having: Callable[[UseCase], object] | None = None) -> list[UseCase]:
    """Every use case whose file loads (and that has what ``having`` asks for).

    A file that does not load is left out here, so the other use cases keep their
    DAGs; ``dags/config_errors.py`` turns it into an import error that names the
    file and its bad fields in the Airflow UI.
    """
    return [u for u in scan().usecases if having is None or having(u)]
