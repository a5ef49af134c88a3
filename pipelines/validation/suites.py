"""Expectation suites derived from a use case's column types and ranges.

:func:`derive_suite` turns a dataset's config into a Great Expectations 1.x suite
(a plain JSON-ready dict). ``mlops init`` writes it to
``expectations/<use case>_<dataset>.json`` once; from then on the file is the
reviewed source of truth and can be edited by hand (it is never overwritten).
Each expectation carries ``meta.severity``: ``critical`` ones quarantine the
partition, ``warning`` ones are logged and recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines import settings
from pipelines.config import DatasetSpec, UseCase

CRITICAL = "critical"
WARNING = "warning"

# pandas dtypes accepted for each declared column type, as GX reports them.
TYPE_LISTS: dict[str, list[str]] = {
    "int": ["int64", "int32", "Int64", "Int32"],
    "float": ["float64", "float32", "Float64", "int64", "Int64"],
    "category": ["object", "str", "string", "category"],
    "string": ["object", "str", "string"],
    # Validated as naive UTC: GX's type check cannot name a timezone-aware dtype.
    "timestamp": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]"],
}

INTERVAL_START = "interval_start"
INTERVAL_END = "interval_end"


def suite_name(usecase: str, dataset: str) -> str:
    return f"{usecase}_{dataset}"


def suite_path(usecase: str, dataset: str) -> Path:
    return settings.expectations_dir() / f"{suite_name(usecase, dataset)}.json"


def _expectation(kind: str, severity: str, why: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity, "why": why}}


def derive_suite(usecase: UseCase, dataset_name: str) -> dict[str, Any]:
    """The expectation suite of one dataset, as GX's JSON form of an ExpectationSuite."""
    ds: DatasetSpec = usecase.source.datasets[dataset_name]
    exps = [
        _expectation(
            "expect_table_columns_to_match_set",
            CRITICAL,
            "schema: exactly the declared columns",
            column_set=ds.column_names,
            exact_match=True,
        )
    ]
    for col in ds.columns:
        exps.append(
            _expectation(
                "expect_column_values_to_be_in_type_list",
                CRITICAL,
                f"type: {col.type}",
                column=col.name,
                type_list=TYPE_LISTS[col.type],
            )
        )
        if not col.nullable:
            exps.append(
                _expectation("expect_column_values_to_not_be_null", CRITICAL, "required column", column=col.name)
            )
        if col.min is not None or col.max is not None:
            exps.append(
                _expectation(
                    "expect_column_values_to_be_between",
                    CRITICAL,
                    "valid range",
                    column=col.name,
                    min_value=col.min,
                    max_value=col.max,
                )
            )
        if col.values:
            exps.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    CRITICAL,
                    "allowed values",
                    column=col.name,
                    value_set=list(col.values),
                )
            )
        if col.mean_warning:
            low, high = col.mean_warning
            exps.append(
                _expectation(
                    "expect_column_mean_to_be_between",
                    WARNING,
                    "usual level",
                    column=col.name,
                    min_value=low,
                    max_value=high,
                )
            )
    if len(ds.key) == 1:
        exps.append(_expectation("expect_column_values_to_be_unique", CRITICAL, "key", column=ds.key[0]))
    else:
        exps.append(_expectation("expect_compound_columns_to_be_unique", CRITICAL, "key", column_list=list(ds.key)))
    exps.append(
        _expectation(
            "expect_column_values_to_be_between",
            CRITICAL,
            "event time inside the data interval (no future or late rows)",
            column=ds.event_time,
            min_value={"$PARAMETER": INTERVAL_START},
            max_value={"$PARAMETER": INTERVAL_END},
            strict_max=True,
        )
    )
    if dataset_name == usecase.label.dataset:
        exps.append(
            _expectation(
                "expect_column_pair_values_a_to_be_greater_than_b",
                CRITICAL,
                "a label cannot arrive before the day it is about",
                column_A=ds.event_time,
                column_B=usecase.label.reference_time,
                or_equal=True,
            )
        )
    if ds.min_rows_warning:
        exps.append(
            _expectation("expect_table_row_count_to_be_between", WARNING, "usual volume", min_value=ds.min_rows_warning)
        )
    return {
        "name": suite_name(usecase.name, dataset_name),
        "expectations": exps,
        "meta": {"derived_from": f"configs/{usecase.name}.yaml", "dataset": dataset_name},
        "notes": "Derived from the use-case config by `mlops init`; edit freely, it is not overwritten.",
    }


def write_missing_suites(usecase: UseCase) -> list[Path]:
    """Write the derived suite of each dataset that has no suite file yet; return the files written."""
    written = []
    for dataset_name in usecase.source.datasets:
        path = suite_path(usecase.name, dataset_name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(derive_suite(usecase, dataset_name), indent=2) + "\n")
            written.append(path)
    return written


def load_suite(usecase: str, dataset: str) -> dict[str, Any]:
    """The reviewed suite file of a dataset, with a clear error when it is missing or broken."""
    path = suite_path(usecase, dataset)
    try:
        suite = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"expectation suite {path} is missing: run `mlops init` to derive it") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"expectation suite {path} is not valid JSON: {exc}") from None
    bad = [
        i
        for i, e in enumerate(suite.get("expectations", []))
        if e.get("meta", {}).get("severity") not in (CRITICAL, WARNING)
    ]
    if bad:
        raise ValueError(f"expectation suite {path}: expectations {bad} need meta.severity 'critical' or 'warning'")
    return suite
