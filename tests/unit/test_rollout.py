"""Staged rollout, the pure part: the canary's entities, its judgment, and configs that cannot work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines import settings
from pipelines.config import ConfigError, RolloutSpec, load_usecase
from pipelines.promotion import rollout
from pipelines.promotion.rollout import PROMOTE, ROLLBACK, WAIT

pytestmark = pytest.mark.unit

CHURN = settings.REPO_ROOT / "configs" / "churn.yaml"
SPEC = RolloutSpec(mode="canary", canary_fraction=0.3, min_days=2, max_days=9, min_rows=300, resamples=200)


def test_the_canary_serves_the_same_entities_whatever_their_order_or_chunks():
    ids = list(range(20_000))
    mask = rollout.canary_mask(ids, "churn-v3", 0.2)
    assert abs(mask.mean() - 0.2) < 0.01
    shuffled = np.random.default_rng(0).permutation(ids)
    again = dict(zip(shuffled, rollout.canary_mask(shuffled, "churn-v3", 0.2), strict=True))
    assert all(again[i] == m for i, m in zip(ids, mask, strict=True))
    chunks = np.concatenate([rollout.canary_mask(ids[i : i + 777], "churn-v3", 0.2) for i in range(0, 20_000, 777)])
    assert (chunks == mask).all()
    assert (rollout.canary_mask([str(i) for i in ids], "churn-v3", 0.2) == mask).all()  # ids as text: the same
    other = rollout.canary_mask(ids, "churn-v4", 0.2)  # another rollout: other entities
    assert 0.02 < (mask & other).mean() < 0.06
    assert rollout.canary_mask(ids, "churn-v3", 0.5)[mask].all()  # a larger share keeps the smaller one


def _scored(canary_noise: float, champion_noise: float, days: int = 3, rows: int = 2000, seed: int = 1):
    """Matured rows of a canary (v2) serving 30% of each day's entities and the champion (v1) the rest,
    each shadow-scored by the other: (served, shadow). Scores are the label plus noise (more: worse)."""
    rng = np.random.default_rng(seed)
    served, shadow = [], []
    for d in range(days):
        y = rng.integers(0, 2, rows).astype(float)
        common = rng.normal(0, 1.0, rows)  # what both models get wrong alike: pairing cancels it
        score = {
            "2": y + common + rng.normal(0, canary_noise, rows),
            "1": y + common + rng.normal(0, champion_noise, rows),
        }
        canary = rng.random(rows) < 0.3
        day = pd.Timestamp("2025-02-10") + pd.Timedelta(days=d)
        for frame, version in ((served, np.where(canary, "2", "1")), (shadow, np.where(canary, "1", "2"))):
            frame.append(
                pd.DataFrame(
                    {
                        "entity_id": [str(i) for i in range(rows)],
                        "day": day,
                        "model_version": version,
                        "score": np.where(version == "2", score["2"], score["1"]),
                        "target": y,
                    }
                )
            )
    return pd.concat(served, ignore_index=True), pd.concat(shadow, ignore_index=True).drop(columns="target")


def _judged(scored, days_running: int = 5) -> tuple[str, str, rollout.Comparison]:
    comparison = rollout.compare(rollout.pairs(*scored, canary="2"), "binary", "roc_auc", (None, None), SPEC)
    action, reason = rollout.judge(comparison, SPEC, days_running)
    return action, reason, comparison


def test_each_distinct_id_is_hashed_once_and_the_split_is_the_per_row_hash():
    """``below`` hashes the distinct ids only; the answer is the definition applied row by row
    (a pinned value keeps the held-out entities and canaries of earlier releases where they were)."""
    import hashlib

    from pipelines.hashsplit import below

    ids = pd.Series(np.random.default_rng(1).integers(0, 500, 5_000))  # every id many times
    expected = [
        int.from_bytes(hashlib.blake2b(f"k\x1f{i}".encode(), digest_size=8).digest(), "big") < 0.3 * 2**64 for i in ids
    ]
    assert below(ids, "k", 0.3).tolist() == expected
    assert below(iter(ids.tolist()), "k", 0.3).tolist() == expected  # any iterable
    assert below([], "k", 0.3).tolist() == []
    assert below(["a", "d", "a", "f", "e"], "held-out", 0.5).tolist() == [True, False, True, True, False]


def test_the_pairs_are_every_entity_day_scored_by_both():
    served, shadow = _scored(0.3, 0.3, days=2, rows=500)
    paired = rollout.pairs(served, shadow, "2")
    assert len(paired) == 1000 and set(paired["champion_version"]) == {"1"}
    by_canary = paired["served_by"] == "canary"
    assert by_canary.sum() == (served["model_version"] == "2").sum()
    row = served.iloc[0]
    pair = paired[(paired["entity_id"] == row["entity_id"]) & (paired["day"] == row["day"])].iloc[0]
    assert pair["canary" if row["model_version"] == "2" else "champion"] == row["score"]
    older = served.assign(day=served["day"] - pd.Timedelta(days=9), model_version="1")  # before the canary
    assert (
        len(rollout.pairs(pd.concat([older, served]), pd.concat([older.drop(columns="target"), shadow]), "2")) == 1000
    )


def test_a_canary_as_good_as_the_champion_is_promoted():
    action, reason, c = _judged(_scored(0.3, 0.3))
    assert action == PROMOTE, reason
    assert c.days == ["2025-02-10", "2025-02-11", "2025-02-12"] and c.resamples == 200 and c.rows == 6000
    assert c.low < c.difference < c.high and "no worse than the champion" in reason
    exact = rollout._auc(np.array([0, 1, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.4, 0.8]))
    from sklearn.metrics import roc_auc_score

    assert exact == pytest.approx(roc_auc_score([0, 1, 1, 0, 1], [0.1, 0.9, 0.4, 0.4, 0.8]))


def test_a_worse_canary_is_rolled_back():
    action, reason, c = _judged(_scored(0.6, 0.3))
    assert action == ROLLBACK and c.high < -SPEC.margin, reason
    assert "worse than the champion" in reason


def test_too_few_matured_rows_wait_and_say_so_until_the_last_day():
    few = _scored(0.3, 0.3, days=1)
    action, reason, _ = _judged(few)
    assert action == WAIT and "1 served day(s) of the canary have matured labels" in reason
    action, reason, _ = _judged(few, days_running=9)
    assert action == ROLLBACK and "rolled back, not shown to be no worse" in reason


def test_an_undecided_canary_waits_then_is_rolled_back_at_max_days():
    close = _scored(0.33, 0.3, days=2, rows=400)  # slightly worse: the interval straddles -margin
    action, reason, c = _judged(close)
    assert action == WAIT and c.low < -SPEC.margin < c.high, reason
    assert _judged(close, days_running=9)[0] == ROLLBACK


def test_the_comparison_is_reproducible():
    paired = rollout.pairs(*_scored(0.3, 0.3), canary="2")
    assert rollout.compare(paired, "binary", "roc_auc", (None, None), SPEC) == rollout.compare(
        paired, "binary", "roc_auc", (None, None), SPEC
    )


def test_regression_metrics_compare_too():
    served, shadow = _scored(0.3, 0.3)
    c = rollout.compare(rollout.pairs(served, shadow, "2"), "regression", "neg_rmse", (None, None), SPEC)
    assert c.canary < 0 and c.champion < 0 and c.low < c.difference < c.high


def _load(tmp_path, change) -> str:
    raw = yaml.safe_load(CHURN.read_text())
    change(raw)
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_usecase(path)
    return str(err.value)


@pytest.mark.parametrize(
    ("rollout_section", "expected"),
    [
        ({"mode": "canary", "canary_fraction": 1.0}, "rollout.canary_fraction: Input should be less than 1"),
        ({"mode": "canary", "canary_fraction": 0}, "rollout.canary_fraction: Input should be greater than 0"),
        ({"mode": "gradual"}, "rollout.mode: Input should be 'direct' or 'canary'"),
        ({"mode": "canary", "min_days": 5, "max_days": 4}, "max_days (4) is shorter than min_days (5)"),
        ({"mode": "canary", "min_days": 2, "max_days": 8}, "rollout.max_days: 8 days cannot judge a canary"),
        ({"mode": "canary", "max_days": 12}, "rollout.max_days: a canary of up to 12 days is longer than "
         "monitoring.retrain.cooldown_days (10)"),
        ({"mode": "canary", "confidence": 0.4}, "rollout.confidence: Input should be greater than 0.5"),
        ({"mode": "canary", "approval": "required", "approval_timeout_hours": 6},
         "rollout.approval_timeout_hours: 6 hours is shorter than a night of the monitor (24 hours)"),
        ({"mode": "canary", "approval": "maybe"}, "rollout.approval: Input should be 'none' or 'required'"),
    ],
)  # fmt: skip
def test_a_rollout_that_cannot_work_fails_on_load_naming_the_field(tmp_path, rollout_section, expected):
    message = _load(tmp_path, lambda raw: raw.update(rollout=rollout_section))
    assert expected in message, message


def test_a_canary_needs_the_monitor(tmp_path):
    def change(raw):
        raw["rollout"] = {"mode": "canary", "max_days": 10}
        raw["monitoring"]["retrain"]["cooldown_days"] = 14
        del raw["monitoring"]

    assert "rollout.mode: a canary needs a monitoring section" in _load(tmp_path, change)


def test_a_canary_that_fits_loads(tmp_path):
    raw = yaml.safe_load(CHURN.read_text())
    raw["rollout"] = {"mode": "canary", "canary_fraction": 0.25, "max_days": 10}
    raw["monitoring"]["retrain"]["cooldown_days"] = 14
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    usecase = load_usecase(path)
    assert usecase.rollout.mode == "canary" and usecase.rollout.canary_fraction == 0.25
    store_sales = settings.REPO_ROOT / "configs" / "store_sales.yaml"
    assert load_usecase(store_sales).rollout.mode == "direct"  # promoted at once unless the file says otherwise
    assert load_usecase(CHURN).rollout.mode == "canary"  # the demo's: 25% of the customers, judged on 2 days
