"""The night's Evidently reports as files: Evidently's library shared once per folder, and pruning."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.config import MonitoringSpec
from pipelines.monitoring import report

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
        page.get_by_text("f0").first.wait_for()


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
