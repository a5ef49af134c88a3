"""The retrain policy as a table of cases: evidence, cooldown, a run in flight, labels, dedupe, storms."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.config import RetrainPolicySpec
from pipelines.monitoring import policy
from pipelines.monitoring.policy import Evidence

DRIFT = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)  # first drifted day
SPEC = RetrainPolicySpec(
    drift_share=0.2,
    prediction_drift=True,
    metric_drop=0.05,
    min_rows=500,
    cooldown_days=7,
    labelled_days_after_drift=8,
)
DELAY = 7


def night(day: dt.datetime, **kw) -> Evidence:
    """Evidence of the night that monitored ``day``; no drift unless told."""
    values = {
        "night": day + dt.timedelta(days=1),
        "current_start": day,
        "current_rows": 2000,
        "drift_share": 0.05,
        "prediction_drifted": False,
        "holdout_metric": 0.84,
        "live_metric": 0.83,
        "live_rows": 2000,
        "live_start": day - dt.timedelta(days=DELAY + 6),
    }
    return Evidence(**(values | kw))


def history(ev: Evidence, spec: RetrainPolicySpec = SPEC, previous: dict | None = None) -> dict:
    """The history record the monitor would write for ``ev``."""
    onset = policy.onset_of(ev, spec, previous)
    return {
        "night": ev.night.isoformat(),
        "evidence": [t for t, _ in policy.evidence_of(ev, spec)],
        "onset": onset.isoformat() if onset else None,
    }


def decide(ev: Evidence, previous=None, last_trigger=None, in_flight=0, spec=SPEC) -> policy.Decision:
    return policy.decide("churn", ev, spec, DELAY, previous, last_trigger, in_flight)


DRIFTED = {"drift_share": 0.4, "drifted_features": ["monthly_charges_latest"]}


@pytest.mark.parametrize(
    ("case", "ev", "kwargs", "action"),
    [
        ("no evidence", night(DRIFT - dt.timedelta(days=3)), {}, policy.NOT_NEEDED),
        ("too few rows to judge", night(DRIFT, current_rows=100, live_rows=0, **DRIFTED), {}, policy.NOT_NEEDED),
        ("share below threshold", night(DRIFT, drift_share=0.19), {}, policy.NOT_NEEDED),
        ("metric drop under threshold", night(DRIFT, live_metric=0.80), {}, policy.NOT_NEEDED),
        ("drift, labels not matured", night(DRIFT, **DRIFTED), {}, policy.WAITING),
        ("prediction drift alone counts", night(DRIFT, prediction_drifted=True), {}, policy.WAITING),
        ("in flight beats everything", night(DRIFT, **DRIFTED), {"in_flight": 1}, policy.IN_FLIGHT),
        (
            "cooldown",
            night(DRIFT + dt.timedelta(days=20), **DRIFTED),
            {"last_trigger": {"night": (DRIFT + dt.timedelta(days=16)).isoformat()}},
            policy.COOLDOWN,
        ),
        (
            "cooldown over",
            night(DRIFT + dt.timedelta(days=24), **DRIFTED),
            {
                "last_trigger": {"night": (DRIFT + dt.timedelta(days=16)).isoformat()},
                "previous": {"evidence": ["data drift"], "onset": DRIFT.isoformat()},
            },
            policy.TRIGGERED,
        ),
    ],
)
def test_policy_table(case, ev, kwargs, action):
    assert decide(ev, **kwargs).action == action, case


def test_a_metric_drop_alone_triggers_once_labels_allow():
    ev = night(DRIFT + dt.timedelta(days=20), live_metric=0.70, live_start=DRIFT)
    decision = decide(ev)
    assert decision.action == policy.TRIGGERED
    assert "below the holdout" in decision.reason and decision.onset == DRIFT.isoformat()


def test_the_trigger_names_its_window_reason_and_dedupe_key():
    ev = night(DRIFT + dt.timedelta(days=15), **DRIFTED)
    previous = {"night": ev.night.isoformat(), "evidence": ["data drift"], "onset": DRIFT.isoformat()}
    decision = decide(ev, previous=previous)
    assert decision.action == policy.TRIGGERED
    assert decision.window_end == ev.night.isoformat() and decision.window_days == 16  # from the onset
    assert decision.dedupe_key == "churn:drift:2025-02-01:2025-02-16"
    assert decision.drifted_features == ["monthly_charges_latest"]


def test_without_waiting_for_labels_it_triggers_at_once_on_the_normal_window():
    spec = SPEC.model_copy(update={"labelled_days_after_drift": 0})
    decision = decide(night(DRIFT, **DRIFTED), spec=spec)
    assert decision.action == policy.TRIGGERED and decision.window_days is None


def test_the_onset_is_carried_over_while_the_evidence_lasts_and_reset_after():
    first = night(DRIFT, **DRIFTED)
    rec = history(first)
    assert rec["onset"] == DRIFT.isoformat()
    later = night(DRIFT + dt.timedelta(days=3), **DRIFTED)
    assert history(later, previous=rec)["onset"] == DRIFT.isoformat()
    calm = night(DRIFT + dt.timedelta(days=4))
    assert history(calm, previous=rec)["onset"] is None


def persisting_drift(nights: int, spec: RetrainPolicySpec = SPEC) -> list[str]:
    """The actions of ``nights`` nights of one drift that no retrain removes (rejected or failed)."""
    previous, last_trigger, actions = None, None, []
    for i in range(nights):
        ev = night(DRIFT + dt.timedelta(days=i), **DRIFTED)
        decision = decide(ev, previous=previous, last_trigger=last_trigger, spec=spec)
        actions.append(decision.action)
        if decision.action == policy.TRIGGERED:
            last_trigger = {"night": decision.night}
        previous = history(ev, spec, previous)
    return actions


def test_a_drift_that_persists_for_weeks_triggers_once_per_cooldown():
    actions = persisting_drift(30)
    triggers = [i for i, a in enumerate(actions) if a == policy.TRIGGERED]
    assert triggers == [14, 21, 28]  # labels of 8 days after the onset first, then one per 7-day cooldown
    assert actions[:14] == [policy.WAITING] * 14
    assert set(actions[15:21]) == {policy.COOLDOWN}


def test_ten_nights_of_drift_give_one_retrain_per_cooldown():
    at_once = SPEC.model_copy(update={"labelled_days_after_drift": 0})
    assert persisting_drift(10, at_once).count(policy.TRIGGERED) == 2  # nights 0 and 7
    longer = at_once.model_copy(update={"cooldown_days": 14})
    assert persisting_drift(10, longer).count(policy.TRIGGERED) == 1


def test_bad_policy_config_names_the_field(tmp_path):
    import yaml

    from pipelines.config import ConfigError, load_usecase
    from pipelines.settings import configs_dir

    raw = yaml.safe_load((configs_dir() / "churn.yaml").read_text())
    raw["monitoring"]["retrain"]["labelled_days_after_drift"] = 3
    raw["monitoring"]["retrain"]["cooldown_days"] = 0
    raw["monitoring"]["drift_method"] = "ks"
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_usecase(path)
    text = str(err.value)
    assert "monitoring.retrain.cooldown_days" in text
    assert "monitoring.retrain.labelled_days_after_drift" in text
    assert "monitoring.drift_threshold" in text
