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
        "champion_version": "1",
        "champion_holdout_metric": 0.84,
        "champion_live_metric": 0.83,
        "champion_live_rows": 2000,
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


def decide(ev: Evidence, previous=None, last_trigger=None, in_flight=0, spec=SPEC, canary=None) -> policy.Decision:
    return policy.decide("churn", ev, spec, DELAY, previous, last_trigger, in_flight, canary)


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
            "a running canary does not hold the retrain back (its challenger must beat the canary too)",
            night(DRIFT + dt.timedelta(days=24), **DRIFTED),
            {
                "canary": "the canary of v3 (since 2025-02-20)",
                "previous": {"evidence": ["x"], "onset": DRIFT.isoformat()},
            },
            policy.TRIGGERED,
        ),
        (
            "no evidence, no word of the canary",
            night(DRIFT - dt.timedelta(days=3)),
            {"canary": "v3"},
            policy.NOT_NEEDED,
        ),
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


def persisting_drift(
    nights: int, spec: RetrainPolicySpec = SPEC, promoted: bool = False, new_live: float = 0.80
) -> list[str]:
    """The actions of ``nights`` nights of one drift whose features keep differing from before it.

    Each retrain is rejected (the failing champion keeps serving), or with ``promoted`` its model
    becomes the champion the next day (holdout 0.80): its own live metric exists once its first
    served day's labels matured (``DELAY`` days later) and is then ``new_live``.
    """
    previous, last_trigger, actions = None, None, []
    champion, promoted_on = 1, None
    for i in range(nights):
        own = {}
        if promoted_on is not None:
            matured = i - promoted_on - DELAY
            own = {
                "champion_version": str(champion),
                "champion_holdout_metric": 0.80,
                "champion_live_metric": new_live if matured > 0 else None,
                "champion_live_rows": 2000 * max(matured, 0),
            }
        ev = night(DRIFT + dt.timedelta(days=i), **DRIFTED, **own)
        decision = decide(ev, previous=previous, last_trigger=last_trigger, spec=spec)
        actions.append(decision.action)
        if decision.action == policy.TRIGGERED:
            last_trigger = {"night": decision.night, "onset": decision.onset, "champion_version": str(champion)}
            if promoted:
                champion, promoted_on = champion + 1, i + 1
        previous = history(ev, spec, previous)
    return actions


def test_a_drift_no_retrain_fixes_triggers_once_per_cooldown():
    actions = persisting_drift(30)
    triggers = [i for i, a in enumerate(actions) if a == policy.TRIGGERED]
    assert triggers == [14, 21, 28]  # labels of 8 days after the onset first, then one per 7-day cooldown
    assert actions[:14] == [policy.WAITING] * 14
    assert set(actions[15:21]) == {policy.COOLDOWN}


def test_a_30_night_drift_gives_one_retrain_when_the_new_champion_holds():
    # Its features still differ from before the onset every night, but the champion the retrain
    # promoted is judged on its own matured predictions, and they hold up: no storm.
    actions = persisting_drift(30, promoted=True)
    assert [i for i, a in enumerate(actions) if a == policy.TRIGGERED] == [14]
    assert set(actions[15:21]) == {policy.COOLDOWN}
    assert set(actions[21:]) == {policy.WATCHING}


def test_a_new_champion_that_fails_on_its_own_predictions_is_retrained_after_the_cooldown():
    actions = persisting_drift(30, promoted=True, new_live=0.70)
    assert [i for i, a in enumerate(actions) if a == policy.TRIGGERED] == [14, 23]
    # nights 21-22: the cooldown is over, but the new champion's first served day's labels are not in yet
    assert actions[21:23] == [policy.WATCHING] * 2


def test_watching_names_the_retrain_and_what_the_new_champion_needs():
    ev = night(DRIFT + dt.timedelta(days=22), **DRIFTED, champion_version="2", champion_live_metric=None,
               champion_live_rows=0, champion_holdout_metric=0.8)  # fmt: skip
    trigger = {"night": (DRIFT + dt.timedelta(days=15)).isoformat(), "day": "2025-02-15",
               "onset": DRIFT.isoformat(), "champion_version": "1"}  # fmt: skip
    previous = {"evidence": ["data drift"], "onset": DRIFT.isoformat()}
    decision = decide(ev, previous=previous, last_trigger=trigger)
    assert decision.action == policy.WATCHING
    assert "retrain of 2025-02-15" in decision.reason and "v2's own live metric" in decision.reason
    # Another drift (a new onset) is judged as usual.
    other = {**trigger, "onset": (DRIFT - dt.timedelta(days=30)).isoformat()}
    assert decide(ev, previous=previous, last_trigger=other).action == policy.TRIGGERED


def test_the_live_metric_of_served_predictions_triggers_whichever_version_served_them():
    # A 30-day label delay with weekly promotions: the champion served no matured day yet,
    # but the versions that did fell well below their holdout figures.
    ev = night(DRIFT + dt.timedelta(days=40), holdout_metric=0.80, live_metric=0.61, live_rows=5600, live_start=DRIFT,
               champion_version="6", champion_live_metric=None, champion_live_rows=0)  # fmt: skip
    decision = decide(ev)
    assert decision.action == policy.TRIGGERED and "live metric 0.6100" in decision.reason


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
    raw["monitoring"]["retrain"]["labelled_days_after_drift"] = 2  # the retrain's split needs 3
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


def test_a_drift_retrain_may_split_its_days_otherwise_and_the_wait_is_checked_against_that(tmp_path):
    import yaml

    from pipelines.config import ConfigError, load_usecase
    from pipelines.settings import configs_dir

    raw = yaml.safe_load((configs_dir() / "churn.yaml").read_text())
    raw["monitoring"]["retrain"] |= {"labelled_days_after_drift": 3, "validation_days": 1, "holdout_days": 1}
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_usecase(path).monitoring.retrain.holdout_days == 1
    raw["monitoring"]["retrain"]["labelled_days_after_drift"] = 2
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"needs at least 3: monitoring.retrain.validation_days \+ monitoring"):
        load_usecase(path)


def test_the_served_live_metric_weighs_each_version_by_its_matured_rows():
    from pipelines.monitoring.live import served_metric

    by_version = {
        "1": {"roc_auc": 0.60, "holdout": 0.80, "rows": 3000},
        "2": {"roc_auc": 0.70, "holdout": 0.75, "rows": 1000},
        "3": {"roc_auc": None, "holdout": 0.9, "rows": 40},  # one class: no figure, not weighed
    }
    live, holdout, rows = served_metric(by_version, "roc_auc")
    assert rows == 4000 and live == pytest.approx(0.625) and holdout == pytest.approx(0.7875)
    assert served_metric({}, "roc_auc") == (None, None, 0)
