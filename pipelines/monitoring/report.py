"""Evidently (0.7, the ``Report`` API) reports of one night, and the numbers taken from them.

* drift: ``DataDriftPreset`` (as :mod:`drift_preset` builds it: the same numbers and
  page, without the per-column figures the preset discards) over every model feature
  plus ``ValueDrift`` of the champion's score, current window against the champion's
  training window; above it, the drifted features that moved the scores most (:mod:`movers`);
* performance: ``ClassificationPreset`` / ``RegressionPreset`` on the matured days;
* shadow: champion and challenger as two named tasks on the same matured rows.

Numbers are read from the snapshot before anything is rendered, so a report that
fails to render still leaves them recorded (:class:`ReportRenderError`). Each page refers to
Evidently's library in the folder's ``js/`` (:func:`shared_library`) and keeps each figure and
Plotly template once (:mod:`compact`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import MonitoringSpec, UseCase
from pipelines.monitoring import compact, movers
from pipelines.training import metrics

log = logging.getLogger(__name__)

# Evidently's score is a p-value for these tests (drift when below the threshold), a distance for the rest.
P_VALUE_METHODS = {
    "K-S p_value", "chi-square p_value", "Z-test p_value", "t_test", "Mann-Whitney U-rank test",
    "Anderson-Darling", "Cramer-von Mises", "Epps-Singleton", "Fisher's Exact test", "g_test",
    "empirical_mmd", "Total-Variation-Distance",
}  # fmt: skip


class ReportRenderError(RuntimeError):
    """The HTML report could not be written; the night's numbers were recorded before."""


def _evidently() -> Any:
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from a pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import evidently

    return evidently


def _dataset(frame: pd.DataFrame, numerical: list[str], **tasks: Any) -> Any:
    ev = _evidently()
    definition = ev.DataDefinition(numerical_columns=numerical, categorical_columns=[], **tasks)
    return ev.Dataset.from_pandas(frame, data_definition=definition)


def drift_snapshot(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], score: str, spec: MonitoringSpec
) -> Any:
    """Run the drift report: every feature, and the score column with the prediction test."""
    ev = _evidently()
    from evidently.metrics import ValueDrift

    from pipelines.monitoring.drift_preset import FeatureDriftPreset

    columns = [*features, score]
    preset = FeatureDriftPreset(columns=features, method=spec.drift_method, threshold=spec.drift_threshold)
    report = ev.Report(
        [preset, ValueDrift(column=score, method=spec.prediction_method, threshold=spec.prediction_threshold)],
        include_tests=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant columns and the like: reported per column, not as warnings
        return report.run(_dataset(current[columns], columns), _dataset(reference[columns], columns))


VALUE_DRIFT_TYPES = (":ValueDrift", ":UndrawnValueDrift")  # Evidently's, and drift_preset's for the features


def drift_rows(snapshot: Any) -> list[dict[str, Any]]:
    """Per column: drift score, method, threshold and whether it drifted (Evidently's own test)."""
    tests = {t.metric_config.metric_id: t for t in snapshot.tests_results if t.id == "drift"}
    rows = []
    for metric_id, result in snapshot.metric_results.items():
        params = result.metric_value_location.metric.params
        if not params.get("type", "").endswith(VALUE_DRIFT_TYPES):
            continue
        method, threshold, value = params.get("method"), params.get("threshold"), float(result.value)
        test = tests.get(metric_id)
        if test is not None:
            drifted = test.status.value == "FAIL"
        else:
            drifted = value < threshold if method in P_VALUE_METHODS else value >= threshold
        rows.append(
            {
                "column": params["column"],
                "score": metrics.json_safe(value),
                "method": method,
                "threshold": threshold,
                "drifted": bool(drifted),
            }
        )
    return rows


def drift_numbers(snapshot: Any, features: list[str], score: str) -> dict[str, Any]:
    """The headline numbers of the drift report: share and names of drifted features, the score's drift."""
    rows = drift_rows(snapshot)
    by_column = {r["column"]: r for r in rows}
    feature_rows = [by_column[f] for f in features if f in by_column]
    drifted = [r["column"] for r in feature_rows if r["drifted"]]
    prediction = by_column.get(score, {})
    return {
        "drift_share": len(drifted) / len(feature_rows) if feature_rows else None,
        "drifted_features": drifted,
        "feature_drift": feature_rows,
        "prediction_drift": {
            "score": prediction.get("score"),
            "method": prediction.get("method"),
            "threshold": prediction.get("threshold"),
            "drifted": prediction.get("drifted"),
        },
        "evidently_version": _evidently().__version__,
    }


def performance_snapshot(frame: pd.DataFrame, task: str, target: str, score: str) -> Any | None:
    """Quality of the served scores on matured rows (None when there are none)."""
    if frame.empty or (task == "binary" and frame[target].nunique() < 2):
        return None  # nothing to judge yet (or one class only: no AUC); the record says why
    ev = _evidently()
    from evidently.presets import ClassificationPreset, RegressionPreset

    if task == "binary":
        data = frame[[target, score]].assign(**{target: frame[target].astype(int)})
        kind = {"classification": [ev.BinaryClassification(target=target, prediction_probas=score, pos_label=1)]}
        preset = ClassificationPreset()
        dataset = ev.Dataset.from_pandas(
            data, data_definition=ev.DataDefinition(numerical_columns=[score], categorical_columns=[target], **kind)
        )
    else:
        data = frame[[target, score]]
        kind = {"regression": [ev.Regression(target=target, prediction=score)]}
        preset = RegressionPreset()
        dataset = _dataset(data, [target, score], **kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ev.Report([preset]).run(dataset, None)


def newest_pair(shadowed: pd.DataFrame) -> pd.DataFrame:
    """The rows of the champion/challenger pair that scored the newest matured day (one pair per report;
    every pair's metrics are in the JSON record)."""
    if shadowed.empty:
        return shadowed
    newest = shadowed.loc[shadowed["day"] == shadowed["day"].max()].iloc[0]
    same = (shadowed["model_version"] == newest["model_version"]) & (
        shadowed["model_version_shadow"] == newest["model_version_shadow"]
    )
    return shadowed[same]


def shadow_snapshot(both: pd.DataFrame, task: str, target: str) -> Any | None:
    """Champion and challenger as two named tasks on the same matured rows (columns ``score``,
    ``score_shadow``, ``target``); None when there are none."""
    if both.empty or (task == "binary" and both[target].nunique() < 2):
        return None
    ev = _evidently()
    from evidently.metrics import MAE, RMSE, Accuracy, F1Score, LogLoss, R2Score, RocAuc

    names = {"champion": "score", "challenger": "score_shadow"}
    data = both[[target, *names.values()]]
    if task == "binary":
        data = data.assign(**{target: data[target].astype(int)})
        tasks = {
            "classification": [
                ev.BinaryClassification(name=n, target=target, prediction_probas=c, pos_label=1)
                for n, c in names.items()
            ]
        }
        metrics_ = [m(classification_name=n) for n in names for m in (RocAuc, LogLoss, F1Score, Accuracy)]
        definition = ev.DataDefinition(numerical_columns=list(names.values()), categorical_columns=[target], **tasks)
    else:
        tasks = {"regression": [ev.Regression(name=n, target=target, prediction=c) for n, c in names.items()]}
        metrics_ = [m(regression_name=n) for n in names for m in (RMSE, MAE, R2Score)]
        definition = ev.DataDefinition(numerical_columns=[target, *names.values()], categorical_columns=[], **tasks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ev.Report(metrics_).run(ev.Dataset.from_pandas(data, data_definition=definition), None)


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics.json_safe(record), indent=2, default=str))
    tmp.replace(path)


def render(
    html: Path,
    record: dict[str, Any],
    snapshot: Any,
    matured: pd.DataFrame,
    shadowed: pd.DataFrame,
    usecase: UseCase,
    target: str,
    score: str,
) -> list[Path]:
    """Write the night's HTML reports: ``<day>.html`` (drift, with the score movers' table at its top)
    and, when labels matured, ``<day>.performance.html`` (the champion's served scores) and
    ``<day>.shadow.html`` (champion and challenger on the same rows). Returns the files written.

    Raises:
        ReportRenderError: a report could not be rendered or written.
    """
    written = []
    try:
        html.parent.mkdir(parents=True, exist_ok=True)
        _save(snapshot, html)
        _insert_at_top(html, movers.html_section(record.get("score_movers") or []))
        written.append(html)
        champion = matured[matured["model_version"].astype(str) == record["champion_version"]]
        performance = performance_snapshot(champion, usecase.task, target, score)
        if performance is not None:
            path = html.with_suffix(".performance.html")
            _save(performance, path)
            written.append(path)
        comparison = shadow_snapshot(newest_pair(shadowed), usecase.task, target)
        if comparison is not None:
            path = html.with_suffix(".shadow.html")
            _save(comparison, path)
            written.append(path)
    except Exception as exc:
        raise ReportRenderError(
            f"the drift report of {usecase.name} {record['day']} could not be rendered ({type(exc).__name__}: "
            f"{exc}); its numbers are in {record['report_json']} and drift_history"
        ) from exc
    return written


def prune(folder: Path, newest: str, keep_days: int) -> list[Path]:
    """Delete the HTML reports in ``folder`` of nights more than ``keep_days`` days before ``newest``
    (an ISO day); the nights' JSON records stay. Returns the files deleted."""
    import datetime as dt

    oldest_kept = dt.date.fromisoformat(newest) - dt.timedelta(days=keep_days - 1)
    deleted = []
    for path in sorted(folder.glob("*.html")):
        try:
            day = dt.date.fromisoformat(path.name[:10])
        except ValueError:
            continue  # not a night's report
        if day < oldest_kept:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def _save(snapshot: Any, path: Path) -> None:
    html = compact.compact_page(shared_library(snapshot.get_html_str(as_iframe=False), path.parent))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)


def _insert_at_top(path: Path, section: str) -> None:
    """Put ``section`` (HTML) at the top of the page in ``path``, above Evidently's report (the file is
    left as it is, with a warning, when its template has no ``<body>``)."""
    if not section:
        return
    html = path.read_text(encoding="utf-8")
    if "<body>" not in html:
        log.warning("Evidently's report template changed: %s has no <body> for the score movers", path)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html.replace("<body>", f"<body>\n{section}", 1), encoding="utf-8")
    tmp.replace(path)


LIBRARY_FOLDER = "js"  # beside the reports: Evidently's JavaScript library and icon font, once per folder


def _library_files() -> dict[str, Path]:
    """Evidently's library and font as its own folder mode names them (``js/evidently.<version>.js``)."""
    ev = _evidently()
    static = Path(ev.__path__[0]) / "nbextension" / "static"
    font = "material-ui-icons.woff2"
    return {f"evidently.{ev.__version__}.js": static / "index.js", font: static / font}


@functools.cache
def _inlined(lib: Path, font: Path) -> tuple[str, str]:
    """The library and font as Evidently inlines them in a report (read once per process: 3.6 MB)."""
    import base64

    script = f"<script>{lib.read_text(encoding='utf-8')}</script>"
    return script, f"url(data:font/ttf;base64,{base64.b64encode(font.read_bytes()).decode()}) format('woff2');"


def shared_library(html: str, folder: Path) -> str:
    """``html`` (a self-contained Evidently report) referring to Evidently's library and font in
    ``folder/js`` instead of inlining them (3.6 MB of every report), which are written there once.

    A report whose inlined library is not found verbatim (another Evidently template) is
    kept self-contained, with a warning: it still opens, only larger.
    """
    files = _library_files()
    (lib_name, lib), (font_name, font) = files.items()
    inlined_lib, inlined_font = _inlined(lib, font)
    if inlined_lib not in html or inlined_font not in html:
        log.warning("Evidently's report template changed: %s keeps its library inlined", folder)
        return html
    target_dir = folder / LIBRARY_FOLDER
    target_dir.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        target = target_dir / name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            tmp = target.with_name(f".{name}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
    html = html.replace(inlined_lib, f'<script src="{LIBRARY_FOLDER}/{lib_name}"></script>', 1)
    return html.replace(inlined_font, f"url({LIBRARY_FOLDER}/{font_name}) format('woff2');", 1)
