"""Debian's Chromium under Playwright, for the tests of pages a person looks at (never a downloaded
browser build: .ci/run installs the `chromium` package)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def require_chromium() -> None:
    """Skip without it, except in CI, where its absence is an error."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"no {CHROMIUM}")


@contextlib.contextmanager
def page(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A new page of a fresh headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
