"""Expectation suites derived from the config, and the reviewed files in expectations/."""

from __future__ import annotations

import json

import pytest

from pipelines import settings
from pipelines.validation import suites


def test_derived_suite_covers_schema_types_nulls_ranges_keys_and_interval(churn):
    suite = suites.derive_suite(churn, "activity")
    kinds = [(e["type"], e["kwargs"].get("column")) for e in suite["expectations"]]
    assert ("expect_table_columns_to_match_set", None) in kinds
    assert ("expect_column_values_to_be_in_type_list", "monthly_charges") in kinds
    assert ("expect_column_values_to_not_be_null", "monthly_charges") in kinds
    assert ("expect_column_values_to_be_between", "tenure_days") in kinds
    assert ("expect_column_values_to_be_in_set", "plan") in kinds
    assert ("expect_compound_columns_to_be_unique", None) in kinds
    interval = [e for e in suite["expectations"] if e["kwargs"].get("column") == "event_timestamp"]
    assert {"$PARAMETER": "interval_end"} in [e["kwargs"].get("max_value") for e in interval]
    severities = {e["meta"]["severity"] for e in suite["expectations"]}
    assert severities == {"critical", "warning"}


def test_committed_suites_exist_for_every_dataset_and_load(churn):
    for dataset in churn.source.datasets:
        suite = suites.load_suite(churn.name, dataset)
        assert suite["name"] == f"churn_{dataset}"


def test_write_missing_suites_never_overwrites_an_edited_file(churn, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_EXPECTATIONS", str(tmp_path))
    written = suites.write_missing_suites(churn)
    assert sorted(p.name for p in written) == ["churn_activity.json", "churn_labels.json"]
    edited = tmp_path / "churn_activity.json"
    edited.write_text(json.dumps({"name": "churn_activity", "expectations": []}))
    assert suites.write_missing_suites(churn) == []
    assert json.loads(edited.read_text())["expectations"] == []


def test_a_suite_without_severities_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_EXPECTATIONS", str(tmp_path))
    (tmp_path / "churn_activity.json").write_text(
        json.dumps({"name": "churn_activity", "expectations": [{"type": "expect_x", "kwargs": {}}]})
    )
    with pytest.raises(ValueError, match=r"expectations \[0\] need meta.severity"):
        suites.load_suite("churn", "activity")


def test_a_missing_suite_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_EXPECTATIONS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run `mlops init`"):
        suites.load_suite("churn", "activity")
    assert settings.expectations_dir() == tmp_path
