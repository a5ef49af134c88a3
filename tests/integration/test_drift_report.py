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
