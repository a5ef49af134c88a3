"""The catalogue of bad input: one table of cases, each with its expected outcome and the check behind it.

`tests/reliability/test_bad_input.py` runs every case; `docs/reliability/bad-input.md` is
rendered from the same table (``python -m tests.reliability.catalogue``), and a test fails
when the page differs from the table, so the page cannot drift from what is tested.

Outcomes: **refused** (a clear error naming the problem, nothing written), **quarantined**
(the rows kept aside with the reasons, nothing curated), **waits** (not complete yet: the task
reschedules itself), **handled** (the input is valid after all and runs, with a warning where
it is odd). Each case that can be fixed is fixed and rerun, and the rerun must work.
"""

from __future__ import annotations

import copy
import datetime as dt
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import settings

ONE = dt.timedelta(days=1)
DAY = dt.datetime(2025, 1, 3, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # "now" for reads of past days


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    bad: str  # the bad input, as a user would describe it
    outcome: str  # refused, quarantined, waits, handled
    seen: str  # what the user sees
    check: Callable[[Any], None]


CASES: list[Case] = []
AREAS = {
    "config": "Use-case YAML",
    "source": "Source data",
    "state": "State on disk",
    "form": "Trigger forms",
}


def case(area: str, bad: str, outcome: str, seen: str) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        CASES.append(Case(fn.__name__.removeprefix("case_"), area, bad, outcome, seen, fn))
        return fn

    return register


class World:
    """What a case works on: a fresh state folder (``$MLOPS_HOME``) with, on demand, a simulated source."""

    def __init__(self, home: Path, tmp: Path, churn: Any):
        self.home, self.tmp, self.churn = home, tmp, churn
        self.url = f"sqlite:///{home / 'source.db'}"

    def simulate(self, days: int = 4) -> None:
        from pipelines.simulation.churn import World as ChurnWorld
        from pipelines.simulation.writer import write_simulation

        write_simulation(self.url, self.churn, ChurnWorld(dt.date(2025, 1, 1), 300, 5, label_delay_days=2), days)

    def sql(self, statement: str, *params: Any) -> None:
        db = sqlite3.connect(self.home / "source.db")
        with db:
            db.execute(statement, params)
        db.close()

    def ingest(self, day: dt.datetime = DAY, usecase: Any = None, **kwargs: Any) -> Any:
        from pipelines.ingestion.ingest import ingest_interval

        kwargs.setdefault("now", AFTER)
        return ingest_interval(self.url, usecase or self.churn, "activity", day, day + ONE, **kwargs)

    def quarantined(self, *names: str) -> None:
        """Ingest DAY and expect its rows quarantined, the reasons naming every one of ``names``."""
        from pipelines.ingestion.ingest import QuarantinedPartition

        with refused(QuarantinedPartition, *names):
            self.ingest()

    def config(self, change: Callable[[dict], Any], name: str = "churn") -> Path:
        """The churn YAML with ``change`` applied to its raw mapping, written under a new folder."""
        raw = yaml.safe_load((settings.REPO_ROOT / "configs" / "churn.yaml").read_text())
        change(raw)
        folder = self.tmp / f"configs-{len(list(self.tmp.glob('configs-*')))}"
        folder.mkdir()
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path


def refused(exc: type[BaseException] | tuple, *names: str) -> Any:
    """``pytest.raises`` for a refusal whose message names every one of ``names``."""
    return _Refused(exc, names)


class _Refused:
    def __init__(self, exc: Any, names: tuple[str, ...]):
        self.raises = pytest.raises(exc)
        self.names = names

    def __enter__(self) -> Any:
        self.info = self.raises.__enter__()
        return self.info

    def __exit__(self, *exc_info: Any) -> bool:
        handled = self.raises.__exit__(*exc_info)
        message = str(self.info.value)
        missing = [n for n in self.names if n not in message]
        assert not missing, f"the error does not name {missing}: {message}"
        return handled


def _load(path: Path) -> Any:
    from pipelines.config import load_usecase

    return load_usecase(path)


def _config_error() -> Any:
    from pipelines.config import ConfigError

    return ConfigError


# -- use-case YAML --------------------------------------------------------------------------------


@case("config", "a YAML syntax error", "refused", "the file and the line of the error")
def case_yaml_syntax(w: World) -> None:
    path = w.tmp / "churn.yaml"
    path.write_text("name: churn\nentity: [unclosed\n")
    with refused(_config_error(), "churn.yaml", "line"):
        _load(path)


@case("config", "an unknown field (a typo)", "refused", "the field's path")
def case_unknown_field(w: World) -> None:
    with refused(_config_error(), "schedule.retires"):
        _load(w.config(lambda raw: raw["schedule"].update(retires=3)))


@case("config", "a required field missing", "refused", "the missing field")
def case_missing_field(w: World) -> None:
    with refused(_config_error(), "entity"):
        _load(w.config(lambda raw: raw.pop("entity")))


@case("config", "a field of the wrong type", "refused", "the field and the expected type")
def case_wrong_type(w: World) -> None:
    with refused(_config_error(), "training.window_days", "integer"):
        _load(w.config(lambda raw: raw["training"].update(window_days="sixty")))


@case("config", "an impossible value (a negative label delay)", "refused", "the field and the bound")
def case_impossible_value(w: World) -> None:
    with refused(_config_error(), "label.delay_days"):
        _load(w.config(lambda raw: raw["label"].update(delay_days=-2)))


@case("config", "a reference to a dataset that does not exist", "refused", "the reference and the datasets there are")
def case_dangling_reference(w: World) -> None:
    with refused(_config_error(), "features.dataset", "nope"):
        _load(w.config(lambda raw: raw["features"].update(dataset="nope")))


@case("config", "a feature over a column the dataset does not have", "refused", "the column")
def case_unknown_feature_column(w: World) -> None:
    with refused(_config_error(), "no_such_column"):
        _load(w.config(lambda raw: raw["features"]["aggregates"].update(no_such_column=["mean"])))


@case("config", "two files declaring the same use case", "refused", "both files")
def case_duplicate_usecase(w: World) -> None:
    from pipelines.config import scan

    first = w.config(lambda raw: None)
    (first.parent / "copy.yaml").write_text(first.read_text())
    found = scan(first.parent)
    assert any("churn" in str(e) and "copy.yaml" in str(e) for e in found.errors.values()), found.errors


@case(
    "config",
    "a responsible gate naming what does not exist (a sensitive attribute, a test's feature) or a tolerance above 1",
    "refused",
    "the field and the name",
)
def case_impossible_responsible_gate(w: World) -> None:
    with refused(_config_error(), "training.fairness.sensitive.2", "religion"):
        _load(w.config(lambda raw: raw["training"]["fairness"]["sensitive"].append("religion")))
    with refused(_config_error(), "training.behaviour.directional.0", "tickets_per_day"):
        _load(
            w.config(lambda raw: raw["training"]["behaviour"]["directional"][0]["features"].append("tickets_per_day"))
        )
    with refused(_config_error(), "training.fairness.metrics.equalized_odds_difference.tolerance"):
        _load(
            w.config(
                lambda raw: raw["training"]["fairness"]["metrics"]["equalized_odds_difference"].update(tolerance=2)
            )
        )


@case("config", "a canary rollout that cannot work (share, length, cooldown)", "refused", "the field and why")
def case_impossible_rollout(w: World) -> None:
    with refused(_config_error(), "rollout.canary_fraction"):
        _load(w.config(lambda raw: raw.update(rollout={"mode": "canary", "canary_fraction": 1.5})))
    with refused(_config_error(), "rollout.max_days", "label.delay_days"):
        _load(w.config(lambda raw: raw.update(rollout={"mode": "canary", "min_days": 2, "max_days": 5})))
    with refused(_config_error(), "rollout.max_days", "cooldown_days"):
        _load(w.config(lambda raw: raw.update(rollout={"mode": "canary", "max_days": 12})))


@case("config", "a column name holding SQL", "refused", "the name and what a name may hold")
def case_crafted_column(w: World) -> None:
    def crafted(raw: dict) -> None:
        raw["source"]["datasets"]["activity"]["columns"][3]["name"] = 'x"; DROP TABLE customer_activity; --'

    with refused(_config_error(), "DROP TABLE"):
        _load(w.config(crafted))


@case("config", "a table name holding quotes and SQL", "refused", "the table name")
def case_crafted_table(w: World) -> None:
    def crafted(raw: dict) -> None:
        raw["source"]["datasets"]["activity"]["table"] = "customer_activity; DELETE FROM churn_labels"

    with refused(_config_error(), "DELETE FROM"):
        _load(w.config(crafted))


@case("config", "one broken file among several", "handled", "the broken file's error; the other use cases load")
def case_one_broken_file(w: World) -> None:
    from pipelines.config import scan

    good = w.config(lambda raw: None)
    (good.parent / "broken.yaml").write_text("name: broken\nschedule: [\n")
    found = scan(good.parent)
    assert [u.name for u in found.usecases] == ["churn"] and list(found.errors) == [good.parent / "broken.yaml"]


# -- source data ----------------------------------------------------------------------------------


def _rebuild_table(w: World, select: str) -> None:
    """Replace ``customer_activity`` with ``select`` over it (SQLite cannot drop or rename columns in place)."""
    w.sql(f"CREATE TABLE changed AS {select}")
    w.sql("DROP TABLE customer_activity")
    w.sql("ALTER TABLE changed RENAME TO customer_activity")


@case("source", "a column renamed in the source", "quarantined", "the missing and the unexpected column")
def case_renamed_column(w: World) -> None:
    w.simulate()
    w.sql("ALTER TABLE customer_activity RENAME COLUMN monthly_charges TO charges")
    w.quarantined("missing", "monthly_charges", "charges")
    w.sql("ALTER TABLE customer_activity RENAME COLUMN charges TO monthly_charges")
    assert w.ingest().info.status == "curated"


@case("source", "a column dropped from the source", "quarantined", "the missing column")
def case_dropped_column(w: World) -> None:
    w.simulate()
    w.sql("ALTER TABLE customer_activity DROP COLUMN call_minutes")
    w.quarantined("missing", "call_minutes")


@case("source", "an extra column in the source", "quarantined", "the unexpected column (declare it, or drop it)")
def case_extra_column(w: World) -> None:
    w.simulate()
    w.sql("ALTER TABLE customer_activity ADD COLUMN secret_notes TEXT DEFAULT 'x'")
    w.quarantined("unexpected", "secret_notes")
    w.sql("ALTER TABLE customer_activity DROP COLUMN secret_notes")
    assert w.ingest().info.status == "curated"


@case("source", "text in a numeric column", "quarantined", "the column, the count of bad values and examples")
def case_text_in_numeric(w: World) -> None:
    w.simulate()
    w.sql("UPDATE customer_activity SET data_usage_gb = 'lots' WHERE customer_id = 7")
    w.quarantined("data_usage_gb", "lots")
    w.sql("UPDATE customer_activity SET data_usage_gb = 1.5 WHERE customer_id = 7")
    assert w.ingest().info.status == "curated"


@case("source", "a column whose type changed in the source", "quarantined", "the column, its declared and stored type")
def case_changed_type(w: World) -> None:
    w.simulate()
    _rebuild_table(w, "SELECT *, CAST(tenure_days AS TEXT) || ' days' AS t FROM customer_activity")
    w.sql("ALTER TABLE customer_activity DROP COLUMN tenure_days")
    w.sql("ALTER TABLE customer_activity RENAME COLUMN t TO tenure_days")
    w.quarantined("tenure_days")


@case("source", "null keys", "quarantined", "the key column and the count")
def case_null_key(w: World) -> None:
    w.simulate()
    _rebuild_table(w, "SELECT * FROM customer_activity")  # no NOT NULL constraint in the copy
    w.sql("UPDATE customer_activity SET customer_id = NULL WHERE rowid % 50 = 0")
    w.quarantined("customer_id")


@case("source", "duplicate keys", "quarantined", "the key and the count of duplicates")
def case_duplicate_key(w: World) -> None:
    w.simulate()
    _rebuild_table(w, "SELECT * FROM customer_activity")
    w.sql(
        "INSERT INTO customer_activity SELECT * FROM customer_activity WHERE event_timestamp >= ? "
        "AND event_timestamp < ? LIMIT 5",
        "2025-01-03",
        "2025-01-04",
    )
    w.quarantined("customer_id")


@case("source", "impossible values (negative charges)", "quarantined", "the column, the bound and examples")
def case_out_of_range(w: World) -> None:
    w.simulate()
    w.sql("UPDATE customer_activity SET monthly_charges = -5 WHERE customer_id < 20")
    w.quarantined("monthly_charges")


@case("source", "a category outside its allowed values (odd Unicode)", "quarantined", "the column and the value")
def case_odd_unicode(w: World) -> None:
    w.simulate()
    w.sql("UPDATE customer_activity SET plan = 'basic\u200b' WHERE customer_id = 3")  # a zero-width space
    w.quarantined("plan")


@case("source", "text that is not valid UTF-8", "quarantined", "the column and the count of undecodable values")
def case_invalid_utf8(w: World) -> None:
    w.simulate()
    w.sql("UPDATE customer_activity SET region = CAST(X'6E6F72FF7468' AS TEXT) WHERE customer_id = 4")
    w.quarantined("region")


@case("source", "an interval that has not ended", "refused", "the interval and when to run it")
def case_interval_not_over(w: World) -> None:
    from pipelines.errors import BadInput

    w.simulate()
    with refused(BadInput, "has not ended", "run it after 2025-01-04"):
        w.ingest(now=DAY + dt.timedelta(hours=12))
    assert w.ingest(now=DAY + 3 * ONE).info.rows > 0


@case("source", "an interval ended, within the lateness allowed for late rows", "waits", "the lateness it waits for")
def case_interval_within_lateness(w: World) -> None:
    from pipelines.errors import NotYet

    w.simulate()
    late = _load(w.config(lambda raw: raw["source"]["datasets"]["activity"].update(lateness_minutes=60)))
    with refused(NotYet, "60 minutes after its end", "lateness_minutes"):
        w.ingest(usecase=late, now=DAY + ONE + dt.timedelta(minutes=10))
    assert w.ingest(usecase=late, now=DAY + ONE + dt.timedelta(minutes=61)).info.rows > 0


@case("source", "an empty interval", "handled", "a warning; an empty partition is curated")
def case_empty_interval(w: World) -> None:
    w.simulate(days=2)
    result = w.ingest(day=DAY + 5 * ONE)
    assert result.info.rows == 0 and result.info.status == "curated"


@case("source", "a re-read that would empty a curated partition", "refused", "both row counts and how to allow it")
def case_shrink(w: World) -> None:
    from pipelines.ingestion.ingest import PartitionWouldShrink

    w.simulate()
    rows = w.ingest().info.rows
    w.sql("DELETE FROM customer_activity WHERE event_timestamp >= '2025-01-03' AND event_timestamp < '2025-01-04'")
    with refused(PartitionWouldShrink, str(rows), "allow_shrink"):
        w.ingest()
    assert w.ingest(allow_shrink=True).info.rows == 0


@case("source", "the source table missing", "refused", "the table and the database")
def case_missing_table(w: World) -> None:
    from pipelines.stores.source import SourceSchemaError

    w.simulate()
    w.sql("ALTER TABLE customer_activity RENAME TO gone")
    with refused(SourceSchemaError, "customer_activity", "does not exist"):
        w.ingest()


@case(
    "source",
    "the source database locked by another writer",
    "handled",
    "nothing: the read waits for the lock (up to 60 s; past that, an error Airflow retries)",
)
def case_locked_source(w: World) -> None:
    import threading
    import time

    w.simulate()
    holder = sqlite3.connect(w.home / "source.db", timeout=0.1, check_same_thread=False)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(2.0, lambda: (holder.rollback(), holder.close()))
    release.start()
    t0 = time.monotonic()
    try:
        assert w.ingest().info.rows > 0
    finally:
        release.join()
    assert time.monotonic() - t0 >= 1.5  # it waited for the writer


# -- state on disk --------------------------------------------------------------------------------


def _curated(w: World) -> Path:
    w.simulate()
    w.ingest()
    return w.home / "curated" / "churn" / "activity" / "2025-01-03.parquet"


@case("state", "a curated partition missing", "refused", "the partition and the command that builds it")
def case_missing_partition(w: World) -> None:
    from pipelines.features.build import MissingCuratedPartition, build_feature_partition

    w.simulate()
    with refused(MissingCuratedPartition, "2025-01-03"):
        build_feature_partition(w.churn, DAY, DAY + ONE)


@case("state", "a truncated partition file", "refused", "the file and how to rebuild it")
def case_truncated_partition(w: World) -> None:
    from pipelines.stores.partitions import CorruptPartition, read_partition

    path = _curated(w)
    path.write_bytes(path.read_bytes()[:100])
    with refused(CorruptPartition, str(path)):
        read_partition(path)
    path.unlink()
    w.ingest()
    assert len(read_partition(path)) > 0


@case("state", "a corrupt Feast registry", "refused", "the file and how to rebuild it")
def case_corrupt_registry(w: World) -> None:
    from pipelines.features.definitions import apply_definitions
    from pipelines.stores import feature_store

    feature_store.registry_path().parent.mkdir(parents=True)
    feature_store.registry_path().write_bytes(b"not a registry")
    with refused(feature_store.FeatureStoreCorrupt, "registry.db"):
        apply_definitions(w.churn)
    feature_store.registry_path().unlink()
    assert apply_definitions(w.churn)


@case("state", "a corrupt MLflow database", "refused", "the file and how to recover it")
def case_corrupt_mlflow(w: World) -> None:
    from pipelines.stores import mlflow_store
    from pipelines.stores.sqlite_integrity import StoreCorrupt

    path = mlflow_store.mlflow_dir() / "mlflow.db"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with refused(StoreCorrupt, "mlflow.db"):
        mlflow_store.configure()


@case("state", "no champion to score with", "refused", "the model and the DAG that trains one")
def case_no_champion(w: World) -> None:
    from pipelines.inference.batch import NoChampion, pin

    with refused(NoChampion, "churn_train"):
        pin(w.churn)


@case("state", "a state folder copied but not relocated", "refused", "both folders and `mlops relocate`")
def case_copied_state(w: World) -> None:
    from pipelines.stores.home import StateMoved, check_not_moved

    (w.home / ".home").write_text("/somewhere/else/var\n")
    with refused(StateMoved, "/somewhere/else/var", "mlops relocate"):
        check_not_moved(w.home)


# -- trigger forms --------------------------------------------------------------------------------

_FORMS: dict[str, Any] = {}


def _form(dag_id: str) -> Any:
    """A copy of the DAG's params: its trigger form."""
    if dag_id not in _FORMS:
        from mlops import inprocess

        _FORMS[dag_id] = inprocess.load_dag(dag_id).params
    return copy.deepcopy(_FORMS[dag_id])


FORM_VALUES = [
    ("churn_train", "window_days", 1),
    ("churn_train", "window_days", "sixty"),
    ("churn_train", "candidates", "xgboost"),
    ("churn_train", "force_promote", "yes"),
    ("churn_train", "reason", 42),
    ("churn_train", "drifted_features", "plan"),
    ("churn_train", "validation_days", 0),
    ("churn_train", "holdout_days", -1),
    ("churn_ingest", "allow_shrink", "maybe"),
    ("churn_rollback", "target_version", 0),
    ("churn_rollback", "target_version", "latest"),
    ("churn_rollback", "reason", None),
]


@case("form", "every field of every form with a value of the wrong type or range", "refused", "the field's name")
def case_form_fields(w: World) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    for dag_id, field, value in FORM_VALUES:
        params = _form(dag_id)
        with refused(ParamValidationError, field):
            params[field] = value
            params.validate()


@case("form", "a candidate the use case does not define", "refused", "the candidate and the ones there are")
def case_unknown_candidate(w: World) -> None:
    from pipelines.errors import BadInput
    from pipelines.training.run import plan_request

    with refused(BadInput, "forest", "xgboost"):
        plan_request(w.churn, {"candidates": ["forest"]}, DAY, "manual")


@case("form", "a canary override with no canary running, or without a reason", "refused", "what is missing")
def case_canary_override(w: World) -> None:
    from pipelines.promotion import canary

    staged = w.churn.model_copy(update={"rollout": w.churn.rollout.model_copy(update={"mode": "canary"})})
    with refused(ValueError, "give a reason"):
        canary.override(staged, "promote", "  ", {}, DAY.isoformat())
    with refused(canary.NoCanary, "no canary of churn is running"):
        canary.override(staged, "abort", "complaints", {}, DAY.isoformat())


@case("form", "a window end that is not a date, or has no time zone", "refused", "the value and the expected form")
def case_bad_window_end(w: World) -> None:
    from pipelines.errors import BadInput
    from pipelines.training.run import plan_request

    for value in ("yesterday", "2025-01-03T00:00:00"):  # the form does not check a date-time's format
        with refused(BadInput, value):
            plan_request(w.churn, {"window_end": value}, DAY, "manual")


@case("form", "a rollback to a version that does not exist", "refused", "the version and the versions there are")
def case_unknown_rollback_target(w: World) -> None:
    from pipelines.errors import BadInput
    from pipelines.promotion.rollback import rollback

    with refused((BadInput, ValueError), "99"):
        rollback(w.churn, "99", "test", "tester")


# -- the page -------------------------------------------------------------------------------------


def render() -> str:
    """The docs page of the catalogue (docs/reliability/bad-input.md)."""
    counts: dict[str, int] = {}
    for c in CASES:
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
    lines = [
        "# Bad input: what each case does",
        "",
        "<!-- Generated from tests/reliability/catalogue.py by `python -m tests.reliability.catalogue`;"
        " tests/reliability/test_bad_input.py runs every case and fails when this page differs. -->",
        "",
        f"{len(CASES)} cases, each run by `tests/reliability/test_bad_input.py` (`make test`): "
        + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        + f". The trigger-form case alone tries {len(FORM_VALUES)} values. **Refused**: a clear error that "
        "names the problem, nothing written, no retry. **Quarantined**: the rows kept aside under "
        "`quarantine/` with the reasons, nothing curated. **Waits**: the task reschedules itself until the "
        "input is complete. **Handled**: valid input after all. Where a case can be fixed, the test fixes it "
        "and runs again, and the rerun must work.",
        "",
    ]
    for area, title in AREAS.items():
        lines += [f"## {title}", "", "| Case | Bad input | Outcome | The message names |", "|---|---|---|---|"]
        lines += [f"| `{c.id}` | {c.bad} | {c.outcome} | {c.seen} |" for c in CASES if c.area == area]
        lines.append("")
    return "\n".join(lines)


PAGE = settings.REPO_ROOT / "docs" / "reliability" / "bad-input.md"

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    print(f"{target}: {len(CASES)} cases")
