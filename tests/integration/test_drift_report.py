"""The night's Evidently reports as files: Evidently's library shared once per folder, each figure and
Plotly template once per page, a night under 1 MB, and pruning; the drifted features that moved the
champion's scores most (``score_movers``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time

import numpy as np
import pandas as pd
import pytest

from pipelines.config import MonitoringSpec
from pipelines.monitoring import compact, movers, report

FEATURES = [f"f{i}" for i in range(6)]


def _windows() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.normal(size=(2000, 7)), columns=[*FEATURES, "score"])
    current = pd.DataFrame(rng.normal(size=(1000, 7)), columns=[*FEATURES, "score"])
    current["f0"] += 1.5  # one drifted feature
    return reference, current


def test_a_report_shares_evidentlys_library_and_still_renders(tmp_path):
    from tests import browser

    reference, current = _windows()
    spec = MonitoringSpec(drift_method="wasserstein", drift_threshold=0.1)
    snapshot = report.drift_snapshot(reference, current, FEATURES, "score", spec)
    folder = tmp_path / "drift"
    folder.mkdir()
    report._save(snapshot, folder / "2025-02-01.html")
    report._save(snapshot, folder / "2025-02-02.html")
    single = len(snapshot.get_html_str(as_iframe=False).encode())
    shared = (folder / "2025-02-01.html").stat().st_size
    library = sorted(p.name for p in (folder / report.LIBRARY_FOLDER).iterdir())
    assert library == sorted(report._library_files()) and not list(folder.glob("**/*.tmp"))
    assert single - shared > 3_500_000 and shared < 1_000_000, (single, shared)  # the 3.6 MB library, once
    assert report.drift_numbers(snapshot, FEATURES, "score")["drifted_features"] == ["f0"]
    with browser.page() as page:  # as a person opens the file: Evidently's page, drawn by the shared library
        page.goto((folder / "2025-02-02.html").as_uri())
        page.get_by_text("Dataset Drift").first.wait_for(timeout=30_000)
        row = page.locator("tr[data-testid=mtablebodyrow]", has_text="f0").first
        row.wait_for()
        # f0's details: its drift figure, drawn with Plotly's template (its grey plot area) put back
        figures = page.locator(".js-plotly-plot")
        shown = figures.count()
        row.get_by_label("Detail panel visibility toggle").click()
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length > {shown}")
        assert "f0 (mean +/- std)" in row.locator("xpath=following-sibling::tr[1]").inner_text()
        backgrounds = figures.evaluate_all("plots => plots.map(p => p.querySelector('rect.bg').style.fill)")
        assert backgrounds == ["rgb(229, 236, 246)"] * figures.count(), backgrounds


def _page_data(html: str) -> tuple[dict, dict, dict]:
    """The dashboard and the figure map a page's library draws from, each figure's Plotly template
    put back as the page's script does before drawing; and the templates the script shares."""
    dashboard, graphs = (json.loads(v) for v in re.findall(r"^\s*var \w+ = (\{.*\});$", html, re.MULTILINE))
    shared = re.search(r"^\s*\}\)\((\{.*\}), \[metric_\w+, additional_graphs_metric_\w+\]\);$", html, re.MULTILINE)
    templates = json.loads(shared[1]) if shared else {}

    def restore(node):
        children = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
        layout = node.get("layout") if isinstance(node, dict) else None
        if isinstance(layout, dict) and isinstance(layout.get("template"), str):
            layout["template"] = templates[layout["template"]]
        for child in children:
            restore(child)

    restore(dashboard)
    restore(graphs)
    return dashboard, graphs, templates


def _widgets(widget: dict):
    yield widget
    for child in widget.get("widgets", []):
        yield from _widgets(child)


def test_a_compacted_page_keeps_each_figure_and_template_once_and_every_number(tmp_path):
    reference, current = _windows()
    snapshot = report.drift_snapshot(reference, current, FEATURES, "score", MonitoringSpec())
    page = report.shared_library(snapshot.get_html_str(as_iframe=False), tmp_path)
    compacted = compact.compact_page(page)

    dashboard, graphs, shared_before = _page_data(page)
    widgets = [w for top in dashboard["widgets"] for w in _widgets(top)]
    copies = [g["id"] for w in widgets for g in w.get("additionalGraphs", [])]
    assert copies and set(copies) <= set(graphs)  # Evidently's second copy of figures the page reads from the map
    for widget in widgets:
        if "additionalGraphs" in widget:
            widget["additionalGraphs"] = []
    *data, templates = _page_data(compacted)
    assert data == [dashboard, graphs]  # the same data, every number as Evidently wrote it
    figures = [g for g in graphs.values() if "template" in g["params"].get("layout", {})]
    assert shared_before == {} and len(figures) == 2 * len(FEATURES) and len(templates) == 1  # Plotly's default, once
    assert len(compacted) < len(page) / 2, (len(page), len(compacted))
    assert compact.compact_page(compacted) == compacted  # nothing left to share


def test_a_page_in_another_template_is_kept_as_it_is(caplog):
    html = "<html><script>var metric_1 = {};</script></html>"
    assert compact.compact_page(html) == html and "template changed" in caplog.text


def test_a_nights_reports_stay_under_1_mb(tmp_path, churn):
    """Drift of 29 features (the churn model's count) on the demo's 5,000 sampled rows, the champion's
    week of matured scores and the shadow comparison: one night's HTML files (the monitor adds a
    JSON record of ~9 KB), the shared js/ aside."""
    rng = np.random.default_rng(5)
    features = [f"f{i:02d}" for i in range(29)]
    reference = pd.DataFrame(rng.gamma(2.0, 3.0, size=(5000, 30)), columns=[*features, "score"])
    current = pd.DataFrame(rng.gamma(2.2, 3.0, size=(5000, 30)), columns=[*features, "score"])
    snapshot = report.drift_snapshot(reference, current, features, "score", MonitoringSpec())
    rows = 14_000  # 7 performance_days of ~2,000 served customers
    target = rng.random(rows) < 0.1
    score = np.clip(0.1 + 0.3 * target + rng.normal(0, 0.15, rows), 0, 1)
    served = pd.DataFrame(
        {"day": np.repeat(pd.date_range("2025-02-04", periods=7), rows // 7), "model_version": "1",
         "model_version_shadow": "2", "target": target.astype(float), "score": score,
         "score_shadow": np.clip(score + rng.normal(0, 0.05, rows), 0, 1)}
    )  # fmt: skip
    day = "2025-02-11"
    record = {"day": day, "champion_version": "1", "score_movers": [], "report_json": str(tmp_path / f"{day}.json")}
    folder = tmp_path / "drift"
    written = report.render(folder / f"{day}.html", record, snapshot, served, served, churn, "target", "score")

    assert [p.name for p in written] == [f"{day}.html", f"{day}.performance.html", f"{day}.shadow.html"]
    sizes = {p.name: p.stat().st_size for p in folder.glob(f"{day}.*")}
    assert sizes.keys() == {p.name for p in written} and not list(folder.glob("*.tmp"))
    assert sum(sizes.values()) < 1_000_000, sizes


def test_the_feature_preset_gives_evidentlys_numbers_and_page_without_the_figures_it_discards():
    """``drift_preset.FeatureDriftPreset`` against Evidently's own ``DataDriftPreset``: the same
    per-column numbers and tests, the same page; its per-column metrics draw nothing, Evidently's
    do (were that to stop, the preset would have no reason left), and ValueDrift keeps its calculation."""
    from evidently.metrics import ValueDrift
    from evidently.metrics.column_statistics import ValueDriftCalculation
    from evidently.presets import DataDriftPreset

    from pipelines.monitoring import drift_preset

    reference, current = _windows()
    spec = MonitoringSpec(drift_method="wasserstein", drift_threshold=0.1)
    ours = report.drift_snapshot(reference, current, FEATURES, "score", spec)
    columns = [*FEATURES, "score"]
    theirs = (
        report._evidently()
        .Report(
            [
                DataDriftPreset(columns=FEATURES, method="wasserstein", threshold=0.1),
                ValueDrift(column="score", method=spec.prediction_method, threshold=spec.prediction_threshold),
            ],
            include_tests=True,
        )
        .run(report._dataset(current[columns], columns), report._dataset(reference[columns], columns))
    )

    assert report.drift_rows(ours) == report.drift_rows(theirs) and len(report.drift_rows(ours)) == 7
    assert [t.status for t in ours.tests_results] == [t.status for t in theirs.tests_results]
    assert len(ours.get_html_str(as_iframe=False)) == len(theirs.get_html_str(as_iframe=False))

    def widgets(snapshot, kind):
        results = snapshot.metric_results.values()
        return [
            r.widget for r in results if r.metric_value_location.metric.params["type"].endswith(f":{kind.__name__}")
        ]

    undrawn = widgets(ours, drift_preset.UndrawnValueDrift)
    assert len(undrawn) == len(FEATURES) and not any(undrawn)
    assert len(widgets(theirs, ValueDrift)) == 7 and all(widgets(theirs, ValueDrift))
    assert len(widgets(ours, ValueDrift)) == 1 and all(widgets(ours, ValueDrift))  # the score's, shown
    assert ValueDrift.__calculation_type__ is ValueDriftCalculation


def test_a_template_without_the_inlined_library_is_kept_whole(tmp_path, caplog):
    html = "<html><script>something else</script></html>"
    assert report.shared_library(html, tmp_path) == html
    assert "template changed" in caplog.text and not (tmp_path / report.LIBRARY_FOLDER).exists()


def test_pruning_deletes_old_reports_and_keeps_their_numbers(tmp_path):
    days = [dt.date(2025, 2, 1) + dt.timedelta(days=i) for i in range(10)]
    for day in days:
        for suffix in (".html", ".shadow.html", ".json"):
            (tmp_path / f"{day}{suffix}").write_text("x")
    (tmp_path / "index.html").write_text("not a night's report")
    deleted = report.prune(tmp_path, str(days[-1]), keep_days=3)
    assert len(deleted) == 14  # 7 nights x 2 HTML files
    assert sorted(p.name for p in tmp_path.glob("*.html")) == sorted(
        ["index.html", *(f"{d}{s}" for d in days[-3:] for s in (".html", ".shadow.html"))]
    )
    assert len(list(tmp_path.glob("*.json"))) == 10


def test_keep_reports_days_must_be_positive():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="keep_reports_days"):
        MonitoringSpec(keep_reports_days=0)


SHIFTED = {"support_tickets_sum_7d": 3.0, "payment_delay_days_max_7d": 10.0}  # added to the current day's values


def test_a_drifted_night_names_the_drifted_features_that_moved_the_champions_scores_most(
    labelled_home, churn, warehouse_url, monkeypatch, caplog
):
    from pipelines.inference.batch import pin_pair
    from pipelines.monitoring import data, monitor
    from pipelines.promotion.gate import gate
    from pipelines.responsible import explain
    from pipelines.stores import mlflow_store
    from pipelines.training.dataset import build_training_data, split_by_time
    from pipelines.training.train import train_candidates
    from tests.conftest import LABELLED_END, LABELLED_START

    training = build_training_data(churn, LABELLED_END)
    best = train_candidates(churn, training, ["xgboost"]).best_result()
    version = mlflow_store.register_challenger(churn, best.model_uri, best.run_id, {"threshold": str(best.threshold)})
    holdout = split_by_time(training.frame, churn.training, churn.entity.name).holdout
    context = {"training_set": str(training.path), "data_hash": training.content_hash, "training_run_id": best.run_id}
    gate(churn, version, holdout, force=True, context=context)

    real_current, real_movers, timed = data.current, movers.score_movers, []

    def drifted_current(*args):  # the current day drifts: more support tickets, later payments
        frame, rows = real_current(*args)
        return frame.assign(**{name: frame[name] + added for name, added in SHIFTED.items()}), rows

    def timed_movers(model, reference, current, drifted, *args):
        t0 = time.perf_counter()
        out = real_movers(model, reference, current, drifted, *args)
        timed.append((time.perf_counter() - t0, len(reference), len(current)))
        return out

    monkeypatch.setattr(data, "current", drifted_current)
    monkeypatch.setattr(movers, "score_movers", timed_movers)
    day = LABELLED_START + 12 * dt.timedelta(days=1)
    with caplog.at_level(logging.INFO, logger="pipelines.monitoring.monitor"):
        record = monitor.measure(churn, day, day + dt.timedelta(days=1), warehouse_url, "test")

    moved = record["score_movers"]
    names = [m["feature"] for m in moved]
    assert set(SHIFTED) <= set(record["drifted_features"]), record["drifted_features"]
    assert 0 < len(moved) <= movers.TOP and len(set(names)) == len(names)
    assert set(names) <= set(record["drifted_features"]) and set(names) & set(SHIFTED), moved
    assert [abs(m["shift"]) for m in moved] == sorted((abs(m["shift"]) for m in moved), reverse=True)
    for m in moved:
        assert set(m) == {"feature", "shift", "reference", "current"}
        assert m["shift"] == pytest.approx(m["current"] - m["reference"], abs=1e-12)
    # The champion's own contributions on the two compared samples, every drifted feature: the top of that list.
    model = mlflow_store.load_model(pin_pair(churn)[0].uri)
    features = model.unwrap_python_model().features
    reference = data.reference(churn, version, churn.monitoring.sample_rows).frame
    current, _ = data.current(churn, day, day + dt.timedelta(days=1), churn.monitoring.sample_rows)
    fitted = explain.fitted_of(model)
    expected = explain.score_shift(
        explain.explain(fitted, reference, features),
        explain.explain(fitted, current, features),
        record["drifted_features"],
    )
    assert names == [m["feature"] for m in expected[: movers.TOP]]
    assert [m["shift"] for m in moved] == pytest.approx([m["shift"] for m in expected[: movers.TOP]])

    # Kept in the JSON record and the history row, logged to the night's MLflow run, shown in the log and report.
    paths = {ext: monitor.drift_dir("churn") / f"{record['day']}.{ext}" for ext in ("json", "html")}
    assert json.loads(paths["json"].read_text())["score_movers"] == moved
    from pipelines.stores import monitoring as store

    row = store.read_night(warehouse_url, store.HISTORY, "churn", day + dt.timedelta(days=1))
    assert row["score_movers"] == moved
    client = mlflow_store.configure()
    logged = client.download_artifacts(record["mlflow_run_id"], "score_movers.json", str(labelled_home))
    assert json.loads(open(logged).read()) == moved
    assert client.get_run(record["mlflow_run_id"]).data.tags["score_movers"].startswith(f"{names[0]} ")
    assert f"score movers: {names[0]} " in caplog.text
    page = paths["html"].read_text()
    assert page.index('id="score-movers"') < page.index('<div id="root_metric')
    assert all(f'<td style="padding:2px 12px">{name}</td>' in page for name in names)
    night = {p.name: p.stat().st_size for p in monitor.drift_dir("churn").glob(f"{record['day']}.*")}
    assert sum(night.values()) < 1_000_000, night  # the night's files (the shared js/ aside)

    (seconds, reference_rows, current_rows), *_ = timed
    print(
        f"score movers: {seconds:.2f} s for {reference_rows} reference and {current_rows} current rows "
        f"({len(record['drifted_features'])} drifted features); the night took {record['seconds']} s"
    )


def test_no_score_movers_without_drift_or_for_a_model_that_is_not_ours():
    class Foreign:  # a pyfunc model this pipeline did not log: no exact contributions
        def unwrap_python_model(self):
            raise ValueError("not a python_function model")

    frame = pd.DataFrame(np.ones((3, len(FEATURES))), columns=FEATURES)
    assert movers.score_movers(Foreign(), frame, frame, ["f0"]) == []
    assert movers.score_movers(Foreign(), frame, frame, []) == []
    assert movers.summary([]) == "" and movers.html_section([]) == ""
