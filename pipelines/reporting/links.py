"""Addresses of what the stages produce, as a person opens them: the UI plugin's routes on
Airflow's own server (relative, so they work behind any host name) and MLflow's UI
(``$MLOPS_MLFLOW_UI_URL``). The pages link with them, and tasks push them as extra links."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote

from pipelines import settings

PREFIX = "/mlops"


def health(usecase: str) -> str:
    return f"{PREFIX}/{usecase}"


def model_card(usecase: str, version: str | int) -> str:
    return f"{PREFIX}/{usecase}/model_cards/v{version}.html"


def drift_report(usecase: str, report: str | Path) -> str:
    """The route of a night's report file (``reports/<use case>/drift/<day>.html``)."""
    return f"{PREFIX}/{usecase}/drift/{quote(Path(report).name)}"


def lineage(usecase: str, day: dt.date | str) -> str:
    return f"{PREFIX}/{usecase}/lineage/{day}"


def data_docs(path: str | Path | None = None) -> str:
    """A page of the Data Docs site; ``path`` absolute (below the site's folder) or relative to it."""
    from pipelines.validation.validate import data_docs_dir

    if path is None:
        return f"{PREFIX}/data_docs/index.html"
    relative = Path(path).resolve().relative_to(data_docs_dir().resolve()) if Path(path).is_absolute() else path
    return f"{PREFIX}/data_docs/{quote(str(relative))}"


def dag(dag_id: str) -> str:
    """A DAG's page in Airflow's UI (its Trigger button opens the run form)."""
    return f"/dags/{dag_id}"


def mlflow_run(experiment_id: str, run_id: str) -> str:
    return f"{settings.mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version(model: str, version: str | int) -> str:
    return f"{settings.mlflow_ui_url()}/#/models/{quote(model)}/versions/{version}"
