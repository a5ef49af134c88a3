"""Validate a partition with Great Expectations 1.x and keep the result.

The suite comes from the reviewed file in ``expectations/``. GX's own state (its
project file and the stored validation results) lives in ``$MLOPS_HOME/gx``, and
Data Docs are rendered to ``$MLOPS_HOME/reports/data_docs``. Several tasks may
validate at once: GX writes its files in place, so setting up GX objects and
building Data Docs take an exclusive file lock, validations a shared one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import settings
from pipelines.config import UseCase
from pipelines.locks import named_lock
from pipelines.stores.source import to_naive_utc
from pipelines.validation import suites

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_DATASOURCE = "in_memory"
_BATCH = "whole_frame"
_SITE = "local_site"


@dataclass(frozen=True)
class ValidationOutcome:
    """What a validation found, in words a person can act on."""

    suite: str
    partition: str
    success: bool
    evaluated: int
    failures: list[str] = field(default_factory=list)  # critical: the partition is quarantined
    warnings: list[str] = field(default_factory=list)  # recorded, the run goes on
    details: list[dict[str, Any]] = field(default_factory=list)
    docs_page: str | None = None  # this validation's page, relative to the Data Docs folder


def data_docs_dir() -> Path:
    return settings.reports_dir() / "data_docs"


def data_docs_index() -> Path:
    return data_docs_dir() / "index.html"


def _lock(exclusive: bool) -> contextlib.AbstractContextManager[None]:
    """GX's stores under ``$MLOPS_HOME/gx``: shared by validations, exclusive while they are set up."""
    return named_lock("gx", shared=not exclusive)


class _NeedsWrite(Exception):
    """GX objects are missing or stale; set them up under the exclusive lock."""


def _context(suite: Any, may_write: bool) -> tuple[Any, Any]:
    import great_expectations as gx
    from great_expectations.exceptions import DataContextError

    root = settings.gx_dir()
    if not may_write and not (root / "gx" / "great_expectations.yml").exists():
        raise _NeedsWrite
    ctx = gx.get_context(mode="file", project_root_dir=str(root))

    def create(fn: Any, *args: Any) -> Any:
        if not may_write:
            raise _NeedsWrite
        return fn(*args)

    try:
        source = ctx.data_sources.get(_DATASOURCE)
    except KeyError:
        source = create(ctx.data_sources.add_pandas, _DATASOURCE)
    try:
        asset = source.get_asset(suite.name)
    except LookupError:
        asset = create(source.add_dataframe_asset, suite.name)
    try:
        batch = asset.get_batch_definition(_BATCH)
    except KeyError:
        batch = create(asset.add_batch_definition_whole_dataframe, _BATCH)
    try:
        stored = ctx.suites.get(suite.name)
    except DataContextError:
        stored = None
    # add_or_update gives every expectation a new id, which makes other processes'
    # copies stale: only write when the content really changed.
    if stored is None or _canonical(stored) != _canonical(suite):
        stored = create(ctx.suites.add_or_update, suite)
    try:
        definition = ctx.validation_definitions.get(suite.name)
    except DataContextError:
        definition = create(
            ctx.validation_definitions.add, gx.ValidationDefinition(name=suite.name, data=batch, suite=stored)
        )
    return _in_memory_settings(ctx), definition


def _in_memory_settings(ctx: Any) -> Any:
    """Settings never saved to the project file (a moved state folder keeps working): no progress
    bars in task logs, Data Docs where the reports live."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.variables.data_docs_sites = {
        _SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    return ctx


def _canonical(suite: Any) -> str:
    d = suite.to_json_dict()
    exps = sorted(json.dumps({k: v for k, v in e.items() if k != "id"}, sort_keys=True) for e in d["expectations"])
    return json.dumps([d["name"], exps, d.get("meta")], sort_keys=True, default=str)


def validate_partition(
    usecase: UseCase,
    dataset: str,
    frame: pd.DataFrame,
    start: dt.datetime,
    end: dt.datetime,
    partition: str,
    build_docs: bool = True,
) -> ValidationOutcome:
    """Validate one partition's rows against its dataset's suite and store the result.

    The GX run is named after the partition and timed at the interval's end, so a
    rerun replaces the stored result instead of adding one.
    """
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite = ExpectationSuite(**suites.load_suite(usecase.name, dataset))
    run_id = RunIdentifier(run_name=partition, run_time=end.astimezone(dt.UTC))
    # Rows are validated with naive UTC timestamps, so the bounds are naive UTC too.
    parameters = {
        suites.INTERVAL_START: to_naive_utc(start),
        suites.INTERVAL_END: to_naive_utc(end),
    }
    exclusive = False
    for _ in range(6):
        with _lock(exclusive):
            try:
                ctx, definition = _context(suite, may_write=exclusive)
            except _NeedsWrite:
                exclusive = True
                continue
            if not exclusive:
                result = definition.run(
                    batch_parameters={"dataframe": frame},
                    expectation_parameters=parameters,
                    run_id=run_id,
                    result_format="SUMMARY",
                )
                break
        exclusive = False
    else:
        raise RuntimeError(f"GX objects of suite '{suite.name}' kept changing under {settings.gx_dir()}")
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    result_id = ValidationResultIdentifier(suite_id, run_id, result.batch_id)
    if build_docs and settings.data_docs_per_run():
        with _lock(exclusive=True):
            ctx.build_data_docs(site_names=[_SITE], resource_identifiers=[suite_id, result_id])
    outcome = summarize(suite.name, partition, result)
    return replace(outcome, docs_page=_docs_page(ctx, result_id))


def _docs_page(ctx: Any, result_id: Any) -> str | None:
    """Where the site has (or, built later, will have) the page of one validation result."""
    urls = ctx.get_docs_sites_urls(resource_identifier=result_id, site_name=_SITE, only_if_exists=False)
    url = urls[0].get("site_url") if urls else None
    if not url or not url.startswith("file://"):
        return None
    path = Path(urllib.parse.unquote(url.removeprefix("file://")))
    try:
        return str(path.relative_to(data_docs_dir()))
    except ValueError:
        return None


def build_all_data_docs() -> Path | None:
    """Build the whole Data Docs site from every stored validation (after runs that deferred it)."""
    import great_expectations as gx

    root = settings.gx_dir()
    if not (root / "gx" / "great_expectations.yml").exists():
        return None
    with _lock(exclusive=True):
        # The site is defined in memory only: a context without it builds nothing, silently.
        _in_memory_settings(gx.get_context(mode="file", project_root_dir=str(root))).build_data_docs(site_names=[_SITE])
    return data_docs_index()


def summarize(suite_name: str, partition: str, result: Any) -> ValidationOutcome:
    """Turn a GX result into failures and warnings such as
    ``expect_column_values_to_not_be_null(monthly_charges): 37 of 5000 rows``."""
    failures, warnings, details = [], [], []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        severity = (config.meta or {}).get("severity", suites.CRITICAL)
        message = f"{config.type}({_subject(config.kwargs)}): {_detail(r)}"
        (failures if severity == suites.CRITICAL else warnings).append(message)
        details.append(
            {
                "expectation": config.type,
                "kwargs": {k: v for k, v in config.kwargs.items() if k != "batch_id"},
                "severity": severity,
                "unexpected_count": (r.result or {}).get("unexpected_count"),
                "observed_value": (r.result or {}).get("observed_value"),
                "message": message,
            }
        )
    return ValidationOutcome(
        suite=suite_name,
        partition=partition,
        success=not failures,
        evaluated=len(result.results),
        failures=sorted(failures),
        warnings=sorted(warnings),
        details=sorted(details, key=lambda d: (d["severity"] != suites.CRITICAL, d["message"])),
    )


_TYPE_CHECK = "expect_column_values_to_be_in_type_list"


def with_read_failures(outcome: ValidationOutcome, by_column: Mapping[str, str]) -> ValidationOutcome:
    """``outcome`` failed by what the read found, column by column (a source type, values that are not
    numbers, undecodable text). GX's own type check of those columns goes: it counts every row of a
    column that is not all numbers and shows valid values as examples."""
    kept = [f for f in outcome.failures if not any(f.startswith(f"{_TYPE_CHECK}({c})") for c in by_column)]
    return replace(outcome, success=False, failures=[*by_column.values(), *kept])


def _subject(kwargs: dict[str, Any]) -> str:
    if kwargs.get("column"):
        return str(kwargs["column"])
    for key in ("column_list", "column_set"):
        if kwargs.get(key):
            return "+".join(map(str, kwargs[key])) if key == "column_list" else "table"
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}>={kwargs['column_B']}"
    return "table"


def _detail(r: Any) -> str:
    res = r.result or {}
    info = r.exception_info or {}
    errors = [
        e.get("exception_message") for e in [info, *info.values()] if isinstance(e, dict) and e.get("raised_exception")
    ]
    if errors:
        return f"could not be evaluated: {errors[0]}"
    if res.get("unexpected_count") is not None:
        sample = res.get("partial_unexpected_list") or []
        shown = f" (e.g. {sample[:3]})" if sample else ""
        return f"{res['unexpected_count']} of {res.get('element_count')} rows{shown}"
    observed = res.get("observed_value")
    if isinstance(observed, list | tuple) and res.get("details", {}).get("mismatched"):
        return f"columns differ: {res['details']['mismatched']}"
    return f"observed {observed!r}"
