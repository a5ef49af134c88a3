"""Feature engineering on tiny frames: windows, trends, encodings and the edge cases."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.features.engineering import FEATURE_TIMESTAMP, build_features, feature_columns

END = dt.datetime(2025, 1, 31, tzinfo=dt.UTC)
START = END - dt.timedelta(days=1)


def _rows(customer: int, days_before_end: list[int], **values) -> pd.DataFrame:
    """Activity of one customer on the given days (1 = the interval's own day)."""
    n = len(days_before_end)
    frame = pd.DataFrame(
        {
            "customer_id": [customer] * n,
            "event_timestamp": [
                pd.Timestamp(END) - pd.Timedelta(days=d) + pd.Timedelta(hours=12) for d in days_before_end
            ],
            "plan": ["basic"] * n,
            "region": ["north"] * n,
            "contract": ["monthly"] * n,
            "tenure_days": [100 - d for d in days_before_end],
            "monthly_charges": [40.0] * n,
            "data_usage_gb": [1.0] * n,
            "call_minutes": [10.0] * n,
            "support_tickets": [0] * n,
            "payment_delay_days": [0] * n,
        }
    )
    for column, value in values.items():
        frame[column] = value
    return frame


@pytest.fixture
def build(churn):
    dataset = churn.source.datasets["activity"]

    def run(history: pd.DataFrame) -> pd.DataFrame:
        return build_features(history, churn.features, dataset, "customer_id", START, END).set_index("customer_id")

    return run


def test_columns_follow_the_config(churn):
    columns = feature_columns(churn.features, churn.source.datasets["activity"])
    assert "data_usage_gb_mean_7d" in columns and "data_usage_gb_sum_14d" in columns
    assert "monthly_charges_trend" in columns and "tenure_days_latest" in columns
    assert [c for c in columns if c.startswith("plan_is_")] == ["plan_is_basic", "plan_is_standard", "plan_is_premium"]


def test_windows_aggregate_only_their_days(build):
    usage = [float(d) for d in range(1, 31)]  # usage on day d before the end = d
    out = build(_rows(1, list(range(1, 31)), data_usage_gb=usage))
    assert out.loc[1, "data_usage_gb_sum_7d"] == sum(range(1, 8))
    assert out.loc[1, "data_usage_gb_mean_14d"] == pytest.approx(7.5)
    assert out.loc[1, "active_days_7d"] == 7 and out.loc[1, "active_days_14d"] == 14
    assert out.loc[1, "data_usage_gb_trend"] == pytest.approx(4.0 - 7.5)
    assert out.loc[1, FEATURE_TIMESTAMP] == pd.Timestamp(END)


def test_a_new_customer_with_one_day_of_history(build):
    out = build(_rows(2, [1], monthly_charges=55.0, support_tickets=2))
    assert out.loc[2, "active_days_14d"] == 1
    assert out.loc[2, "monthly_charges_mean_7d"] == out.loc[2, "monthly_charges_mean_14d"] == 55.0
    assert out.loc[2, "monthly_charges_trend"] == 0.0
    assert out.loc[2, "support_tickets_sum_14d"] == 2.0


def test_gaps_in_activity_count_only_days_seen(build):
    out = build(_rows(3, [1, 4, 12, 20], payment_delay_days=[0, 3, 9, 11]))
    assert out.loc[3, "active_days_7d"] == 2 and out.loc[3, "active_days_14d"] == 3
    assert out.loc[3, "payment_delay_days_max_7d"] == 3.0
    assert out.loc[3, "payment_delay_days_max_14d"] == 9.0


def test_a_customer_that_stopped_appearing_gets_no_row(build):
    history = pd.concat([_rows(4, [1, 2]), _rows(5, [3, 10])])  # customer 5 was last seen 3 days ago
    assert build(history).index.tolist() == [4]


def test_latest_values_and_encodings_come_from_the_last_day(build):
    rows = _rows(6, [2, 1], plan=["basic", "premium"], tenure_days=[50, 51], monthly_charges=[30.0, 90.0])
    out = build(rows)
    assert out.loc[6, "tenure_days_latest"] == 51.0
    assert out.loc[6, "monthly_charges_latest"] == 90.0
    assert (out.loc[6, "plan_is_premium"], out.loc[6, "plan_is_basic"]) == (1, 0)


def test_rows_outside_the_history_or_after_the_end_change_nothing(build):
    base = _rows(7, [1, 5])
    noise = pd.concat([base, _rows(7, [45], data_usage_gb=999.0), _rows(7, [-1], data_usage_gb=999.0)])
    pd.testing.assert_frame_equal(build(base), build(noise))


def test_no_activity_in_the_interval_gives_an_empty_typed_frame(build, churn):
    out = build(_rows(8, [5]))
    assert out.empty
    assert str(out["data_usage_gb_mean_7d"].dtype) == "float64"
    assert str(out["active_days_7d"].dtype) == "int64"


def test_an_interval_longer_than_the_shortest_window_is_refused(churn):
    with pytest.raises(ValueError, match="longer than the shortest window"):
        build_features(
            _rows(9, [1]),
            churn.features,
            churn.source.datasets["activity"],
            "customer_id",
            END - dt.timedelta(days=8),
            END,
        )


def test_label_entity_rows_keep_only_known_labels_at_the_end_of_their_day(churn):
    from pipelines.features.serving import EVENT_TIMESTAMP, label_entity_rows

    labels = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "reference_date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"], utc=True),
            "label_timestamp": pd.to_datetime(["2025-01-15 08:00", "2025-01-16 08:00", "2025-01-17 08:00"], utc=True),
            "churned": [0, 1, 0],
        }
    )
    rows = label_entity_rows(churn, labels, known_at=dt.datetime(2025, 1, 17, tzinfo=dt.UTC))
    assert rows["customer_id"].tolist() == [1, 2]  # the third label is not known yet
    assert rows[EVENT_TIMESTAMP].tolist() == [
        pd.Timestamp("2025-01-02", tz="UTC"),
        pd.Timestamp("2025-01-03", tz="UTC"),
    ]
    assert rows["churned"].tolist() == [0, 1]


def test_a_missing_category_encodes_as_no_value(build):
    out = build(_rows(10, [1], plan=[None]))
    assert (out.loc[10, "plan_is_basic"], out.loc[10, "plan_is_premium"]) == (0, 0)
