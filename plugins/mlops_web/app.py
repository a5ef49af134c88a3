"""``/mlops`` on Airflow's API server: the model-health pages, the artefacts under ``$MLOPS_HOME``
(drift reports, model cards, Data Docs) through fixed routes, and Prometheus metrics.

Pages read the stores through ``pipelines.reporting``, the code ``mlops status`` and ``mlops health``
print from; nothing here reaches into a DAG file. Every route needs an Airflow login (``auth.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from mlops_web import auth, pages

app = FastAPI(
    title="mlops",
    description="Model health, artefacts and metrics of the MLOps pipeline",
    dependencies=[Depends(auth.require_login)],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
app.add_exception_handler(HTTPException, auth.refused)

_FILE_NAME = re.compile(r"^[\w][\w.-]*\.html$")  # one file of a fixed folder: no separator, no leading dot
_LIBRARY_FILE = re.compile(r"^[\w][\w.-]*\.(js|woff2)$")


def _usecase(name: str):
    from pipelines.config import ConfigError, get_usecase

    if not re.fullmatch(r"[A-Za-z0-9_]+", name):  # a use-case name, never a path
        raise HTTPException(404, f"no use case '{name}'")
    try:
        return get_usecase(name)
    except (ConfigError, FileNotFoundError, KeyError) as exc:
        raise HTTPException(404, f"no use case '{name}'") from exc


def warehouse_url(conn_id: str) -> str | None:
    """A connection's SQLAlchemy URL as tasks resolve it, or the project default."""
    from mlops.airflow_admin import resolved_connection_url

    return resolved_connection_url(conn_id)


def _file(root: Path, relative: str) -> FileResponse:
    """A file below ``root``; anything that resolves outside it (``..``, a symlink) is not found."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise HTTPException(404, "no such report")
    return FileResponse(target)


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    from pipelines.config import scan

    found = scan()
    return pages.index(found.usecases, {str(p): e for p, e in found.errors.items()})


def last_successes() -> dict[str, dt.datetime | None]:
    """DAG id -> end of its latest successful run, from Airflow's metadata database."""
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        rows = session.execute(
            sa.select(DagRun.dag_id, sa.func.max(DagRun.end_date))
            .where(DagRun.state == DagRunState.SUCCESS)
            .group_by(DagRun.dag_id)
        ).all()
    return {dag_id: ended for dag_id, ended in rows}


@app.get("/metrics")
def metrics(last_success: Annotated[dict, Depends(last_successes)]) -> Response:
    from pipelines.config import scan
    from pipelines.reporting.metrics import metrics_text

    body = metrics_text(scan().usecases, warehouse_url, last_success, dt.datetime.now(dt.UTC))
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def run_interval_end(dag_id: str, run_id: str) -> dt.datetime | None:
    """The data interval end of one run, from Airflow's metadata database (None: no such run)."""
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(
            sa.select(DagRun.data_interval_end).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )


@app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
def run_report(
    dag_id: str, run_id: str, interval_end: Annotated[dt.datetime | None, Depends(run_interval_end)]
) -> Response:
    """The tab on a run's page: a drift monitor's run shows its night's report."""
    from pipelines.config import scan
    from pipelines.reporting import links
    from pipelines.stores import monitoring

    usecase = next((u for u in scan().usecases if u.monitoring and u.dag_id("drift_monitor") == dag_id), None)
    if usecase is None:
        return HTMLResponse(pages.no_report(dag_id, run_id, "only the drift monitor's runs have a report"))
    if interval_end is None:
        raise HTTPException(404, f"no run {run_id} of {dag_id}")
    night = monitoring.read_night(
        warehouse_url(usecase.inference.connection_id), monitoring.HISTORY, usecase.name, interval_end
    )
    if not night or not night.get("report_html"):
        return HTMLResponse(pages.no_report(dag_id, run_id, "this night has no report (yet): see the run's logs"))
    if not Path(night["report_html"]).is_file():
        reason = "this night's report was deleted (monitoring.keep_reports_days); its numbers are in drift_history"
        return HTMLResponse(pages.no_report(dag_id, run_id, reason))
    return RedirectResponse(links.drift_report(usecase.name, night["report_html"]), status_code=307)


@app.get("/data_docs/{path:path}")
def data_docs(path: str) -> FileResponse:
    from pipelines.validation.validate import data_docs_dir

    return _file(data_docs_dir(), path or "index.html")


@app.get("/{name}", response_class=HTMLResponse)
def model_health(name: str) -> str:
    from pipelines.reporting.health import health

    usecase = _usecase(name)
    return pages.model_health(usecase, health(usecase, warehouse_url))


@app.get("/{name}/drift/{file}")
def drift_report(name: str, file: str) -> FileResponse:
    from pipelines import settings

    if not _FILE_NAME.match(file):
        raise HTTPException(404, "no such report")
    return _file(settings.reports_dir() / _usecase(name).name / "drift", file)


@app.get("/{name}/drift/js/{file}")
def drift_report_library(name: str, file: str) -> FileResponse:
    """Evidently's library and font, shared by a use case's reports (``drift/js``)."""
    from pipelines import settings
    from pipelines.monitoring.report import LIBRARY_FOLDER

    if not _LIBRARY_FILE.match(file):
        raise HTTPException(404, "no such file")
    return _file(settings.reports_dir() / _usecase(name).name / "drift" / LIBRARY_FOLDER, file)


@app.get("/{name}/model_cards/{file}")
def model_card(name: str, file: str) -> FileResponse:
    from pipelines.training.card import cards_dir

    if not _FILE_NAME.match(file):
        raise HTTPException(404, "no such model card")
    return _file(cards_dir(_usecase(name)), file)


@app.get("/{name}/lineage/{day}", response_class=HTMLResponse)
def lineage(name: str, day: dt.date) -> str:
    from pipelines.reporting.lineage import render, trace

    usecase = _usecase(name)
    if usecase.inference is None:
        raise HTTPException(404, f"use case '{name}' makes no predictions")
    try:
        record = trace(usecase, day, warehouse_url(usecase.inference.connection_id))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return pages.lineage(usecase, day, render(record))
