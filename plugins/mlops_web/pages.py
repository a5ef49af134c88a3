"""HTML of the plugin's pages: plain, escaped, one stylesheet inline, links to every artefact."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from pipelines.reporting import links

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ddd;padding:.3rem .6rem;"
    "text-align:left;font-size:.9rem}th{background:#f6f6f6}a{color:#0b62a4}.muted{color:#777}"
    ".decision{padding:.6rem 1rem;background:#f4f8fb;border-left:4px solid #0b62a4;margin:1rem 0}"
    "nav a{margin-right:1rem}td.gaps{white-space:nowrap}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><nav><a href='/mlops/'>Use cases</a>"
        f"<a href='/mlops/metrics'>Metrics</a><a href='{links.data_docs()}'>Data Docs</a>"
        f"<a href='/'>Airflow</a></nav><h1>{escape(title)}</h1>{body}</body></html>"
    )


def index(usecases: list[Any], errors: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td><a href='{links.health(u.name)}'>{escape(u.name)}</a></td><td>{escape(u.task)}</td>"
        f"<td>{escape(u.description or '')}</td><td>{escape(u.owner or '')}</td></tr>"
        for u in usecases
    )
    broken = "".join(f"<li><code>{escape(p)}</code>: {escape(e)}</li>" for p, e in errors.items())
    body = f"<table><tr><th>use case</th><th>task</th><th>what it predicts</th><th>owner</th></tr>{rows}</table>" + (
        f"<h2>Use-case files that do not load</h2><ul>{broken}</ul>" if broken else ""
    )
    return _page("Use cases", body)


def _fmt(value: Any) -> str:
    if value is None:
        return "<span class='muted'>-</span>"
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


def _short(text: str | None, limit: int = 160) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def model_health(usecase: Any, record: dict[str, Any]) -> str:
    from pipelines.reporting.chart import health_chart

    name = usecase.name
    model = record["model"] or {}
    aliases = model.get("aliases") or {}
    registered = model.get("model") or name
    parts = [f"<p>{escape(usecase.description or '')}</p>"]
    for key, message in record["errors"].items():
        parts.append(f"<p class='decision'>{escape(key)} could not be read: {escape(message)}</p>")
    if aliases:
        held = ", ".join(f"{alias} v{v}" for alias, v in aliases.items() if v is not None) or "no alias held"
        parts.append(f"<p><b>Model <code>{escape(registered)}</code></b>: {escape(held)}.</p>")
    if usecase.training:
        parts.append(
            f"<p><a href='{links.dag(usecase.dag_id('train'))}'>Retrain</a> (Trigger on {usecase.dag_id('train')}: "
            f"window, candidates, force promotion, reason) &middot; "
            f"<a href='{links.dag(usecase.dag_id('rollback'))}'>Roll back</a> (Trigger on "
            f"{usecase.dag_id('rollback')}: the version, default the previous champion)</p>"
        )
    latest = record["latest_decision"]
    if latest:
        parts.append(
            f"<div class='decision'><b>Latest retrain decision</b> (night of {escape(str(latest['day']))}): "
            f"<b>{escape(latest['action'])}</b>: {escape(latest.get('reason') or '')}</div>"
        )
    parts.append(health_chart(record["days"], record["events"]))
    parts.append(_versions(name, record, aliases, registered))
    parts.append(_days(name, record["days"], bool(usecase.inference)))
    return _page(f"Model health: {name}", "".join(parts))


def _versions(name: str, record: dict[str, Any], aliases: dict, registered: str) -> str:
    metric = record["primary_metric"] or "metric"
    held = {str(v): alias for alias, v in aliases.items() if v is not None}
    rows = []
    for v in reversed(record["versions"]):
        version = str(v["version"])
        hrefs = [
            f"<a href='{links.model_card(name, version)}'>model card</a>",
            f"<a href='{links.mlflow_version(registered, version)}'>MLflow</a>",
        ]
        rows.append(
            f"<tr><td>v{version}</td><td>{escape(held.get(version, ''))}</td><td>{escape(v['decision'])}</td>"
            f"<td>{_fmt(v['metric'])}</td><td>{_fmt(v['champion_metric'])}</td><td>{escape(v['trigger'] or '')}</td>"
            f"<td class='gaps'>{_gaps(v.get('fairness') or {})}</td><td>{escape(_tests(v.get('behaviour') or {}))}</td>"
            f"<td title='{escape(v['reason'] or '')}'>{escape(_short(v['reason']))}</td><td>{' '.join(hrefs)}</td></tr>"
        )
    if not rows:
        return "<h2>Versions</h2><p>No version has been judged yet: run the train DAG.</p>"
    return (
        f"<h2>Versions</h2><table><tr><th>version</th><th>alias</th><th>decision</th><th>{escape(metric)}</th>"
        f"<th>champion's</th><th>trigger</th><th>group gaps</th><th>behaviour</th><th>why</th><th>links</th></tr>"
        f"{''.join(rows)}</table>"
    )


_SHORT_GAPS = {"demographic_parity_difference": "DP", "equalized_odds_difference": "EO", "mae_gap": "MAE gap"}


def _gaps(fairness: dict[str, dict[str, float | None]]) -> str:
    """``region DP 0.04 EO 0.21``, a line per attribute: a version's group gaps (n/a: too few groups to judge)."""
    return "<br>".join(
        escape(
            f"{attribute} "
            + " ".join(
                f"{_SHORT_GAPS.get(m, m)} {'n/a' if value is None else f'{value:.2f}'}" for m, value in gaps.items()
            )
        )
        for attribute, gaps in sorted(fairness.items())
    )


def _tests(behaviour: dict[str, str]) -> str:
    """``3/3 pass``, or the tests that failed."""
    failed = [name for name, status in behaviour.items() if status == "fail"]
    if failed:
        return "failed: " + ", ".join(failed)
    return f"{sum(s == 'pass' for s in behaviour.values())}/{len(behaviour)} pass" if behaviour else ""


def _days(name: str, days: list[dict[str, Any]], predicts: bool) -> str:
    rows = []
    for d in reversed(days):
        hrefs = []
        if d["drift_report"]:
            hrefs.append(f"<a href='{links.drift_report(name, d['drift_report'])}'>drift report</a>")
        if predicts and d["champion_version"]:
            hrefs.append(f"<a href='{links.lineage(name, d['day'])}'>lineage</a>")
        rows.append(
            f"<tr><td>{escape(d['day'])}</td><td>{_fmt(d['rows'])}</td><td>{_fmt(d['quarantined'] or None)}</td>"
            f"<td>{_fmt(d['champion_version'])}</td><td>{_fmt(d['live_metric'])}</td><td>{_fmt(d['drift_share'])}</td>"
            f"<td>{_fmt(d['prediction_drift'])}</td><td>{_fmt(d['action'])}</td><td>{' '.join(hrefs)}</td></tr>"
        )
    return (
        "<h2>Days</h2><table><tr><th>day</th><th>rows</th><th>quarantined</th><th>champion</th><th>live metric</th>"
        "<th>drifted share</th><th>prediction drift</th><th>decision</th><th>links</th></tr>"
        f"{''.join(rows)}</table>"
    )


def lineage(usecase: Any, day: dt.date, text: str) -> str:
    return _page(f"Lineage: {usecase.name} {day}", f"<pre>{escape(text)}</pre>")


def no_report(dag_id: str, run_id: str, why: str) -> str:
    return _page(f"{dag_id}: {run_id}", f"<p>{escape(why)}.</p>")
