"""The whole loop, as `make demo` runs it: history, first champion, drift, detection, one retrain,
its canary, its promotion to every customer, recovery.

Real DAG runs in-process over the demo's simulated stream (configs/churn.yaml:
drift on day 31 of 52). Asserts the closed-loop figures the README promises:
drift detected within 2 days, exactly one retrain in the cooldown, its challenger
serving a quarter of the customers as a canary (every prediction row naming the
version and stage that served it) until its matured labels promote it, and the
promoted model at >= 95% of the old champion's pre-drift metric on post-drift days,
on the gate's holdout and live, while the old champion fell. The same loop on a
regression (from YAML alone, over a user's own source) is tests/e2e/test_onboarding.py;
store_sales' DAGs are tests/e2e/test_regression_usecase.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipelines import settings
from pipelines.config import get_usecase
from pipelines.monitoring import policy
from pipelines.stores import monitoring as store
from tests import demo

pytestmark = pytest.mark.xdist_group(demo.GROUP)  # the demo's state is read by test_ui_plugin too


@pytest.fixture
def demo_home(demo_run: demo.DemoRun, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The state `mlops demo` left (tests.demo), as this process's $MLOPS_HOME and configs."""
    monkeypatch.setenv("MLOPS_HOME", str(demo_run.home))
    monkeypatch.setenv("MLOPS_CONFIGS", str(demo_run.configs))
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_SOURCE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_WAREHOUSE", raising=False)
    return demo_run.home


def _warehouse() -> str:
    """The demo's warehouse: the default connection of the state in $MLOPS_HOME."""
    return settings.default_connection_urls()[settings.WAREHOUSE_CONN_ID]


@pytest.mark.slow
def test_the_loop_detects_the_drift_retrains_once_and_recovers(demo_home, demo_run):
    from mlops import replay

    usecase = get_usecase("churn")
    printed = demo_run.printed
    summary = json.loads(replay.summary_path(usecase).read_text())
    loop = summary["closed_loop"]
    assert "closed loop:" in printed and "recovery: new champion at" in printed
    assert "time to recovery:" in printed and "thresholds (nights before the known drift" in printed

    drift = dt.date.fromisoformat(loop["drift_day"])
    assert loop["false_alarms_before_drift"] == []
    assert loop["detection_delay_days"] is not None and loop["detection_delay_days"] <= 2
    # Two weeks of persisting drift, one retrain: labels of the new regime first, then the cooldown.
    assert len(loop["triggered"]) == 1 and loop["at_most_one_retrain_per_cooldown"]
    assert loop["decisions"][policy.WAITING] >= 7
    retrain = loop["retrain"]
    assert retrain["decision"] == "canary"  # rollout.mode canary: a quarter of the customers first
    assert [s["stage"] for s in retrain["rollout"]] == ["canary", "full"] and retrain["rollout"][1]["by"] == "monitor"
    assert min(retrain["post_drift_holdout_days"]) >= drift.isoformat()
    assert loop["recovery_ratio"] >= 0.95 and loop["recovered"]
    live = retrain["canary_live"]  # the promoted model's own matured predictions, paired with the champion's
    assert loop["live_ratio"] >= 0.95 and live["low"] > -0.01 and len(live["days"]) >= 2
    assert loop["time_to_canary_days"] == (dt.date.fromisoformat(loop["triggered"][0]) - drift).days
    full_day = dt.date.fromisoformat(retrain["rollout"][1]["day"][:10]) - dt.timedelta(days=1)
    assert loop["time_to_recovery_days"] == (full_day - drift).days > loop["time_to_canary_days"]
    # Every prediction row names the version and stage that served it: during the canary a quarter of
    # the customers were served by the retrain, afterwards everyone.
    served = {  # who served each day (a rejected challenger's shadow scores apart: served to nobody)
        row["day"]: {k: n for k, n in (row.get("served") or {}).items() if not k.endswith(" challenger")}
        for row in summary["per_day"]
    }
    assert any(k.endswith(" challenger") for row in summary["per_day"] for k in row.get("served") or {})
    canary_days = [d for d, split in served.items() if f"{retrain['version']} canary" in split]
    assert canary_days and all(
        0.2 < served[d][f"{retrain['version']} canary"] / sum(served[d].values()) < 0.3 for d in canary_days
    )
    last = summary["per_day"][-1]
    assert last["day"] > full_day.isoformat() and set(served[last["day"]]) == {f"{retrain['version']} champion"}
    assert "canary v" in printed and "-> full" in printed and "live, on the canary's" in printed
    assert "(shadow v" in printed  # shadow -> canary -> full, in the day table
    # The nights before the drift are stable: the suggested thresholds sit above what they showed.
    found = summary["thresholds"]
    assert found["stable_nights"] >= 3 and found["suggested_drift_share"] > found["drift_share_max"]
    old_after = retrain["replaced_champion_post_drift_metric"]
    assert old_after < loop["old_champion"]["pre_drift_metric"] - 0.1  # the old champion did fall

    # Shadow scoring of the rejected challenger, compared with the champion once labels matured.
    assert list((demo_home / "reports" / "churn" / "drift").glob("*.shadow.html"))

    # The triggered run carried the monitor's reason, report and window to the train DAG.
    decisions = store.read(_warehouse(), store.DECISIONS, "churn")
    trigger = next(d for d in decisions if d["action"] == policy.TRIGGERED)
    record = json.loads((demo_home / "reports" / "churn" / "decisions" / f"v{retrain['version']}.json").read_text())
    assert record["trigger_reason"].startswith("drift monitor") and trigger["conf"]["window_days"] >= 8
    assert Path(trigger["report_html"]).exists()

    # One record across the stores for a post-drift day's predictions.
    from pipelines.reporting.lineage import trace

    day = dt.date.fromisoformat(summary["per_day"][-1]["day"])
    lineage = trace(usecase, day, _warehouse())
    assert lineage["models"][0]["version"] == retrain["version"]
    assert lineage["models"][0]["data_hash"] and lineage["features"]["computed_from"]["validation"]
    assert lineage["monitoring"]["drift_report"] and lineage["monitoring"]["retrain_decision"]["action"]

    # The responsible gate: every decision record carries the group gaps, the behavioural tests and
    # the global explanation; every card shows them; each prediction its top reasons.
    for path in sorted((demo_home / "reports" / "churn" / "decisions").glob("v*.json")):
        judged = json.loads(path.read_text())["challenger"]
        assert set(judged["fairness"]) == {"region", "plan"}, path
        assert judged["fairness"]["region"]["gaps"]["demographic_parity_difference"] is not None, path
        assert len(judged["behaviour"]) == 3 and len(judged["importance"]) == 10, path
        card = (demo_home / "reports" / "churn" / "model_cards" / f"{path.stem}.md").read_text()
        assert "## Fairness" in card and "## Explanations" in card, path
    assert all(t["status"] == "pass" for t in record["challenger"]["behaviour"])  # the retrain passed them all
    entity = lineage["predictions"]["rows"] and _first_entity(lineage)
    one = trace(usecase, day, _warehouse(), entity=entity)["entity"]
    assert one["model_version"] == retrain["version"] and len(one["reasons"]) == 3
    night = json.loads((demo_home / "reports" / "churn" / "drift" / f"{drift.isoformat()}.json").read_text())
    assert night["score_movers"] and {m["feature"] for m in night["score_movers"]} <= set(night["drifted_features"])


def _first_entity(lineage: dict) -> str:
    """An entity scored that day (the day's Parquet partition of predictions)."""
    import pandas as pd

    return str(pd.read_parquet(lineage["predictions"]["partition"], columns=["entity_id"])["entity_id"].iloc[0])
