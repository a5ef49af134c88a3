"""Bad input meets the expectation suites: every case fails by name, column and count."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.simulation.churn import World, simulate
from pipelines.validation.validate import data_docs_index, validate_partition

DAY = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)
END = DAY + dt.timedelta(days=1)
WORLD = World(start=dt.date(2025, 1, 1), customers=400, seed=11, label_delay_days=14)


@pytest.fixture(scope="module")
def good_day() -> dict[str, pd.DataFrame]:
    day = list(simulate(WORLD, 20))[-1]
    return {"activity": day.activity.reset_index(drop=True), "labels": day.labels.reset_index(drop=True)}


def _validate(churn, dataset, frame):
    return validate_partition(churn, dataset, frame, DAY, END, "2025-01-20", build_docs=False)


def test_a_good_day_passes_and_its_data_docs_are_built(home, churn, good_day):
    for dataset, frame in good_day.items():
        outcome = validate_partition(churn, dataset, frame, DAY, END, "2025-01-20")
        assert outcome.success, outcome.failures
        assert outcome.failures == []
        assert (data_docs_index().parent / outcome.docs_page).is_file()  # its own page, linked from the task
    index = data_docs_index()
    assert index.exists()
    assert "churn_activity" in index.read_text()


def _one_failure(outcome, expectation: str, column: str) -> str:
    assert not outcome.success
    matching = [f for f in outcome.failures if f.startswith(f"{expectation}({column})")]
    assert matching, f"no {expectation}({column}) among {outcome.failures}"
    return matching[0]


def test_missing_column(home, churn, good_day):
    outcome = _validate(churn, "activity", good_day["activity"].drop(columns=["call_minutes"]))
    message = _one_failure(outcome, "expect_table_columns_to_match_set", "table")
    assert "call_minutes" in message


def test_extra_column(home, churn, good_day):
    outcome = _validate(churn, "activity", good_day["activity"].assign(promo_code="X"))
    assert "promo_code" in _one_failure(outcome, "expect_table_columns_to_match_set", "table")


def test_wrong_type(home, churn, good_day):
    frame = good_day["activity"].assign(monthly_charges=good_day["activity"]["monthly_charges"].astype(str))
    message = _one_failure(
        outcome := _validate(churn, "activity", frame), "expect_column_values_to_be_in_type_list", "monthly_charges"
    )
    assert f"{len(frame)} of {len(frame)} rows (e.g. ['" in message  # values of the wrong type, row by row
    assert outcome.details[0]["severity"] == "critical"


def test_nulls_are_counted(home, churn, good_day):
    frame = good_day["activity"].copy()
    frame.loc[:36, "monthly_charges"] = np.nan
    message = _one_failure(
        _validate(churn, "activity", frame), "expect_column_values_to_not_be_null", "monthly_charges"
    )
    assert message.startswith(f"expect_column_values_to_not_be_null(monthly_charges): 37 of {len(frame)} rows")


def test_out_of_range_values(home, churn, good_day):
    frame = good_day["activity"].copy()
    frame.loc[:4, "tenure_days"] = -5
    message = _one_failure(_validate(churn, "activity", frame), "expect_column_values_to_be_between", "tenure_days")
    assert "5 of" in message
    assert "-5" in message


def test_duplicate_keys(home, churn, good_day):
    frame = pd.concat([good_day["activity"], good_day["activity"].iloc[:3]], ignore_index=True)
    message = _one_failure(
        _validate(churn, "activity", frame), "expect_compound_columns_to_be_unique", "customer_id+event_timestamp"
    )
    assert "6 of" in message  # both copies of each of the three duplicated rows


def test_future_timestamps(home, churn, good_day):
    frame = good_day["activity"].copy()
    frame.loc[:1, "event_timestamp"] = pd.Timestamp("2025-01-23 10:00")
    message = _one_failure(_validate(churn, "activity", frame), "expect_column_values_to_be_between", "event_timestamp")
    assert "2 of" in message


def test_a_label_that_arrives_before_its_reference_day(home, churn, good_day):
    frame = good_day["labels"].copy()
    frame.loc[:2, "reference_date"] = pd.Timestamp("2025-01-25")
    _one_failure(
        _validate(churn, "labels", frame),
        "expect_column_pair_values_a_to_be_greater_than_b",
        "label_timestamp>=reference_date",
    )


def test_an_empty_window_passes_with_a_volume_warning(home, churn):
    from pipelines.ingestion.ingest import empty_frame

    outcome = _validate(churn, "activity", empty_frame(churn.source.datasets["activity"]))
    assert outcome.success, outcome.failures
    assert any(w.startswith("expect_table_row_count_to_be_between(table)") for w in outcome.warnings)


def test_warning_level_expectations_do_not_fail(home, churn, good_day):
    frame = good_day["activity"].assign(monthly_charges=300.0)  # valid, but far above the usual mean
    outcome = _validate(churn, "activity", frame)
    assert outcome.success
    assert [w.split(":")[0] for w in outcome.warnings] == ["expect_column_mean_to_be_between(monthly_charges)"]
