"""The documentation site as a person opens it: built strictly, served, and looked at in Debian's Chromium."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines import settings
from tests import browser

PAGES = {  # path -> text the page must show
    "": "a tabular model that keeps itself healthy",
    "reference/configuration/": "Configuration reference",
    "how-to/airflow-cli/": "AIRFLOW_HOME",
    "how-to/deploy/": "What differs from the embedded default",
    "how-to/spark/": "Point it at a real cluster",
    "adr/0001-in-process-dag-test-for-the-demo/": "DAG.test",
    "reliability/": "what the system survives",
    "reliability/bad-input/": "text that is not valid UTF-8",
    "concepts/rollout/": "The monitor and the canary never act on models at once",
    "concepts/alerts/": "A channel that is down never fails a run",
    "adr/0006-canary-judged-on-paired-scores/": "judged on paired scores",
    "adr/0007-held-out-entities/": "judged on entities they were never fitted on",
    "get-started/": "canary v3 -> full",
    "concepts/responsible/": "Fairness guardrails",
    "adr/0008-exact-explanations-without-shap/": "not the shap package",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    """The site built with --strict into a temporary folder and served on a free local port."""
    browser.require_chromium()
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [str(mkdocs), "build", "--strict", "--quiet", "-d", str(out)], cwd=settings.REPO_ROOT, env=env, check=True
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_the_pages_open_with_their_navigation(site, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with browser.page() as page:
        try:
            for path, text in PAGES.items():
                page.goto(site + path)
                page.wait_for_load_state("load")
                shot = shots / f"{path.strip('/').replace('/', '_') or 'index'}.png"
                page.screenshot(path=str(shot))
                body = page.inner_text("body")
                assert text in body, f"{path or 'index'} does not show '{text}' (screenshot {shot})"
                assert "Reference" in page.inner_text(".md-tabs"), f"{path or 'index'}: no navigation tabs"
            # The generated reference: one table per config section, every key described.
            page.goto(site + "reference/configuration/")
            assert page.locator("h2").count() >= 15 and page.locator("table").count() >= 15
            # The bad-input catalogue, rendered from the table the tests run: one table per area.
            page.goto(site + "reliability/bad-input/")
            assert page.locator("table").count() == 4 and page.locator("tbody tr").count() >= 30
        except Exception:
            kept = settings.reports_dir() / "ui"
            kept.mkdir(parents=True, exist_ok=True)
            for shot in shots.glob("*.png"):
                shutil.copy(shot, kept / shot.name)
            raise
