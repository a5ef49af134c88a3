"""The Grafana dashboard shipped for /mlops/metrics queries only metrics the plugin exports."""

from __future__ import annotations

import datetime as dt
import json
import re

from pipelines import settings
from pipelines.config import scan
from pipelines.reporting.metrics import metrics_text

DASHBOARD = settings.REPO_ROOT / "docs" / "grafana" / "mlops-model-health.json"


def test_every_panel_queries_a_metric_the_plugin_exports(home):
    exported = set(
        re.findall(
            r"^# TYPE (\w+) ", metrics_text(scan().usecases, lambda c: None, {}, dt.datetime.now(dt.UTC)).decode(), re.M
        )
    )
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"\b(mlops_\w+)\{", t["expr"])}
    assert queried and queried <= exported, queried - exported
    assert exported <= queried, f"not on the dashboard: {exported - queried}"
