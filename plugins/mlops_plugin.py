"""The `mlops` Airflow plugin: the model-health pages, artefacts and metrics at ``/mlops`` on the
API server (``mlops_web/``), and "Model health" in the UI's navigation.

Airflow imports this file in every component that loads plugins; the pages' code is imported
with it, their heavy imports only when a page is requested.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

# Airflow puts the plugins folder on sys.path in its own processes; a process that loads this
# file by path without doing so (a tool, a test) finds the pages' package beside it all the same.
if str(Path(__file__).parent) not in sys.path:
    sys.path.append(str(Path(__file__).parent))

from mlops_web.app import app

from pipelines import settings


class MLOpsPlugin(AirflowPlugin):
    name = "mlops"
    fastapi_apps: ClassVar[list[dict]] = [
        {"app": app, "url_prefix": "/mlops", "name": "MLOps: model health, artefacts, metrics"}
    ]
    external_views: ClassVar[list[dict]] = [
        {"name": "Model health", "href": "mlops/", "destination": "nav", "category": "browse", "url_route": "mlops"},
        # MLflow's own UI (`make mlflow-ui`, or the server profile's): runs, registered versions, aliases.
        {"name": "MLflow", "href": settings.mlflow_ui_url(), "destination": "nav", "category": "browse"},
        # A tab on every run's page; a drift monitor's run shows that night's report in it.
        {
            "name": "Drift report",
            "href": "mlops/runs/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "mlops-run",
        },
    ]
