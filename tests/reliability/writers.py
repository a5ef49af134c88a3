"""The writers of the state, as the fault-injection suite kills them (tests/reliability/faults.py).

Every function takes the state folder (already ``$MLOPS_HOME`` in the child that runs it).
``write_*`` is one write as a task does it; ``check_*`` lists what a reader would find
wrong in the state a kill left (a file that does not read, a half-written table, an
alias without its decision record, an online store behind what its record claims);
``seen_*`` is what a finished write left, compared exactly between an uninterrupted
run and a rerun after a kill.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from tests.labelled import LABELLED_END, LABELLED_START

ONE = dt.timedelta(days=1)
DAY = LABELLED_START + 11 * ONE  # 2025-01-12: a day inside the labelled history
RUN_ID = "faults__reliability"


def _churn() -> Any:
    from pipelines.config import get_usecase

    return get_usecase("churn")


def _source(home: Path) -> str:
    return f"sqlite:///{home / 'source.db'}"


WAREHOUSE_URL_FILE = "faults-warehouse.url"  # a state whose warehouse is elsewhere (PostgreSQL) names it here


def _warehouse(home: Path) -> str:
    elsewhere = home / WAREHOUSE_URL_FILE
    return elsewhere.read_text().strip() if elsewhere.exists() else f"sqlite:///{home / 'warehouse.db'}"


def _digest(frame: pd.DataFrame) -> str:
    from pipelines.stores.partitions import content_hash

    return content_hash(frame.reset_index(drop=True))


def relocated(home: Path) -> None:
    """Make a copied state name itself (its stores still name the folder it was copied from)."""
    from mlops.relocate import relocate

    result = relocate(home, connections=False)
    assert result.ok, result.remaining


# -- partitions: curated, quarantine, features ---------------------------------------------------


def _zone_problems(zone: str, dataset: str) -> list[str]:
    """Partitions of a zone that readers list but cannot read, or whose rows disagree with their info."""
    from pipelines.stores import partitions

    problems = []
    for path in partitions.list_partitions(zone, "churn", dataset):
        try:
            frame, info = partitions.read_partition(path), partitions.read_info(path)
        except Exception as exc:
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        if info is None or info.rows != len(frame) or info.content_hash != partitions.content_hash(frame):
            problems.append(f"{path.name}: its info does not describe its rows")
    return problems


def _zone_seen(zone: str, dataset: str) -> dict[str, str]:
    from pipelines.stores import partitions

    return {p.name: partitions.read_info(p).content_hash for p in partitions.list_partitions(zone, "churn", dataset)}


def setup_changed_day(home: Path) -> None:
    """The source's activity of DAY changes (a late correction): a new read replaces the curated partition."""
    db = sqlite3.connect(home / "source.db")
    with db:
        start, end = (t.strftime("%Y-%m-%d %H:%M:%S") for t in (DAY, DAY + ONE))
        db.execute(
            "UPDATE customer_activity SET monthly_charges = monthly_charges + 1 "
            "WHERE event_timestamp >= ? AND event_timestamp < ?",
            (start, end),
        )
    db.close()


def write_curated(home: Path) -> None:
    from pipelines.ingestion.ingest import ingest_interval

    ingest_interval(_source(home), _churn(), "activity", DAY, DAY + ONE)


def check_curated(home: Path) -> list[str]:
    return _zone_problems("curated", "activity")


def seen_curated(home: Path) -> dict[str, str]:
    return _zone_seen("curated", "activity")


def setup_bad_day(home: Path) -> None:
    """A day whose activity breaks a critical expectation: it goes to quarantine."""
    db = sqlite3.connect(home / "source.db")
    with db:
        start, end = (t.strftime("%Y-%m-%d %H:%M:%S") for t in (DAY, DAY + ONE))
        db.execute(
            "UPDATE customer_activity SET monthly_charges = -5 WHERE event_timestamp >= ? AND event_timestamp < ?",
            (start, end),
        )
    db.close()


def write_quarantine(home: Path) -> str:
    from pipelines.ingestion.ingest import QuarantinedPartition, ingest_interval

    try:
        ingest_interval(_source(home), _churn(), "activity", DAY, DAY + ONE)
    except QuarantinedPartition:
        return "quarantined"
    return "curated"


def check_quarantine(home: Path) -> list[str]:
    return _zone_problems("quarantine", "activity") + _zone_problems("curated", "activity")


def seen_quarantine(home: Path) -> dict[str, Any]:
    return {"quarantine": _zone_seen("quarantine", "activity"), "curated": _zone_seen("curated", "activity")}


def setup_no_features(home: Path) -> None:
    from pipelines.stores import partitions

    partitions.partition_path("features", "churn", "activity", DAY.date().isoformat()).unlink()


def write_features(home: Path) -> None:
    from pipelines.features.build import build_feature_partition

    build_feature_partition(_churn(), DAY, DAY + ONE)


def check_features(home: Path) -> list[str]:
    return _zone_problems("features", "activity")


def seen_features(home: Path) -> dict[str, str]:
    return _zone_seen("features", "activity")


# -- Feast: apply and materialization ------------------------------------------------------------


def setup_no_registry(home: Path) -> None:
    (home / "feast" / "registry.db").unlink()


def write_apply(home: Path) -> list[str]:
    from pipelines.features.definitions import apply_definitions

    return apply_definitions(_churn())


def _registry_objects() -> dict[str, list[str]]:
    from pipelines.stores import feature_store

    store = feature_store.get_store()
    return {
        "entities": sorted(e.name for e in store.list_entities()),
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "feature_services": sorted(s.name for s in store.list_feature_services()),
    }


def check_apply(home: Path) -> list[str]:
    from pipelines.stores import feature_store

    if not feature_store.registry_path().exists():
        return []  # nothing applied yet: the rerun applies everything
    try:
        objects = _registry_objects()
    except Exception as exc:
        return [f"registry: {type(exc).__name__}: {exc}"]
    return [] if all(objects.values()) or not any(objects.values()) else [f"registry half applied: {objects}"]


def seen_apply(home: Path) -> dict[str, list[str]]:
    return _registry_objects()


def setup_materialized_before(home: Path) -> None:
    from pipelines.features.materialize import materialize_intervals

    materialize_intervals(_churn(), [(DAY - ONE, DAY)])


def write_materialize(home: Path) -> int:
    from pipelines.features.materialize import materialize_intervals

    return materialize_intervals(_churn(), [(DAY, DAY + ONE)])


def _online(day: dt.datetime) -> pd.DataFrame:
    """What the online store serves for every entity of the feature partitions of DAY - 1 and DAY."""
    from pipelines.features.definitions import feature_service_name
    from pipelines.stores import feature_store, partitions

    ids = sorted(
        set().union(
            *(
                partitions.read_partition(partitions.partition_path("features", "churn", "activity", key))[
                    "customer_id"
                ]
                for key in ((day - ONE).date().isoformat(), day.date().isoformat())
            )
        )
    )
    store = feature_store.get_store()
    frame = feature_store.online_features(store, feature_service_name(_churn()), "customer_id", ids)
    return frame.sort_values("customer_id").reset_index(drop=True)


def _offline_latest(until: dt.datetime) -> pd.DataFrame:
    """The latest feature row of each of those entities in the partitions up to ``until``."""
    from pipelines.stores import partitions

    keys = [(DAY - ONE).date().isoformat()] + ([DAY.date().isoformat()] if until > DAY else [])
    rows = pd.concat(
        partitions.read_partition(partitions.partition_path("features", "churn", "activity", k)) for k in keys
    )
    return rows.sort_values("feature_timestamp").groupby("customer_id").tail(1).set_index("customer_id")


def check_materialize(home: Path) -> list[str]:
    """The online store is never behind the interval its record claims: each entity holds the values
    of the claimed interval or of the one being written (a kill can leave it ahead, never behind);
    an entity the claimed interval did not have may still have nothing."""
    from pipelines.features.materialize import materialized_record

    claimed = dt.datetime.fromisoformat(json.loads(materialized_record(_churn()).read_text())["interval_end"])
    online = _online(DAY).set_index("customer_id")
    before, after = _offline_latest(DAY), _offline_latest(DAY + ONE)
    columns = [c for c in online.columns if c in after.columns]
    nothing = pd.Series([float("nan")] * len(columns), index=columns)
    behind = []
    for entity, row in online[columns].iterrows():
        new = after.loc[entity, columns] if entity in after.index else nothing
        old = before.loc[entity, columns] if entity in before.index else nothing
        allowed = [new] if claimed >= DAY + ONE else [old, new]
        if not any(_same(row, option) for option in allowed):
            behind.append(entity)
    return [f"{len(behind)} entities hold values older than the claimed interval ending {claimed}"] if behind else []


def _same(a: pd.Series, b: pd.Series) -> bool:
    return all(
        (pd.isna(x) and pd.isna(y)) or (isinstance(x, float) and abs(x - float(y)) < 1e-6) or x == y
        for x, y in zip(a, b, strict=True)
    )


def seen_materialize(home: Path) -> dict[str, Any]:
    from pipelines.features.materialize import materialized_record

    return {"record": json.loads(materialized_record(_churn()).read_text()), "online": _digest(_online(DAY))}


# -- the training set ----------------------------------------------------------------------------


def write_training_set(home: Path) -> str:
    from pipelines.training.dataset import build_training_data

    return build_training_data(_churn(), LABELLED_END).content_hash


def check_training_set(home: Path) -> list[str]:
    from pipelines.training.dataset import read_training_data

    problems = []
    for path in sorted((home / "training").rglob("*.parquet")) if (home / "training").exists() else []:
        if ".tmp" in path.name:
            continue
        try:
            read_training_data(_churn(), path)
        except Exception as exc:
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return problems


def seen_training_set(home: Path) -> dict[str, Any]:
    from pipelines.training.dataset import read_training_data

    files = sorted(p for p in (home / "training").rglob("*.parquet") if ".tmp" not in p.name)
    return {str(p.relative_to(home)): read_training_data(_churn(), p).content_hash for p in files}


def nothing(home: Path) -> None:
    """No preparation beyond the base state."""


# -- models: registration, the gate's decision record and alias move, the model card -------------

TRAINED = "faults-trained.json"  # the trained base's plan, training set and training outcome


def _normalized(value: Any, home: Path) -> Any:
    """``value`` with the state folder's path replaced (the reference run and the reruns are copies)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True).replace(str(home), "$MLOPS_HOME"))


def _run_facts() -> dict[str, str]:
    return {"airflow_dag_id": "churn_train", "airflow_run_id": RUN_ID, "trigger": "manual"}


def prepare_trained(home: Path) -> None:
    """The labelled history, a training set and trained candidates (not registered)."""
    from pipelines.training.run import build_set, plan_request, train_planned

    plan = plan_request(_churn(), {"reason": "faults"}, LABELLED_END, "manual")
    tset = build_set(_churn(), plan)
    outcome = train_planned(_churn(), plan, tset, _run_facts())
    (home / TRAINED).write_text(json.dumps({"plan": plan, "tset": tset, "outcome": outcome}))


def write_promotion(home: Path) -> None:
    from pipelines.training.run import gate_version, register_best

    trained = json.loads((home / TRAINED).read_text())
    version = register_best(_churn(), trained["outcome"])
    gate_version(_churn(), version, trained["tset"], trained["outcome"], trained["plan"], _run_facts())


def _aliases() -> dict[str, str | None]:
    from pipelines.stores import mlflow_store

    client = mlflow_store.configure()
    return {a: mlflow_store.alias_version(client, "churn", a) for a in ("champion", "challenger", "previous")}


def check_promotion(home: Path) -> list[str]:
    """An alias never points at a version without its decision record; cards and records read whole."""
    from pipelines.promotion.decisions import decisions_dir

    problems = []
    records = {}
    for path in sorted(decisions_dir(_churn()).glob("v*.json")) if decisions_dir(_churn()).exists() else []:
        try:
            records[path.stem.removeprefix("v")] = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"{path.name}: {exc}")
    champion = _aliases()["champion"]
    if champion is not None and records.get(champion, {}).get("decision") != "promoted":
        problems.append(f"champion is v{champion} but no decision record promotes it")
    cards = home / "reports" / "churn" / "model_cards"
    for card in sorted(cards.glob("*.html")) if cards.exists() else []:
        if not card.read_text().rstrip().endswith("</html>"):
            problems.append(f"{card.name} is cut short")
    return problems


def seen_promotion(home: Path) -> dict[str, Any]:
    from pipelines.promotion.decisions import decisions_dir
    from pipelines.stores import mlflow_store

    client = mlflow_store.configure()
    versions = client.search_model_versions("name='churn'")
    records = {p.name: _decision(json.loads(p.read_text())) for p in sorted(decisions_dir(_churn()).glob("*.json"))}
    return _normalized(
        {
            "aliases": _aliases(),
            "versions": sorted((v.version, v.run_id, v.tags.get("decision")) for v in versions),
            "records": records,
            "cards": sorted(p.name for p in (home / "reports" / "churn" / "model_cards").glob("*")),
        },
        home,
    )


def _decision(record: dict[str, Any]) -> dict[str, Any]:
    """A decision record without what measures the clock: when it was decided and how long each
    evaluation's responsible checks took (``responsible_seconds``)."""
    out = {k: v for k, v in record.items() if k != "decided_at"}
    for role in ("challenger", "champion"):
        if isinstance(out.get(role), dict):
            out[role] = {k: v for k, v in out[role].items() if k != "responsible_seconds"}
    return out


# -- predictions and shadow predictions; the drift monitor's history, decisions and reports ------

SCORED_DAY = LABELLED_END - ONE  # the day the predictions writer scores; the monitor's night ends after it


def prepare_served(home: Path) -> None:
    """On the trained base: v1 champion, the other candidate as challenger (shadow-scored), and
    predictions for the days before SCORED_DAY."""
    from pipelines.inference.batch import pin_models, score_intervals
    from pipelines.stores import mlflow_store
    from pipelines.training.train import TrainingOutcome

    write_promotion(home)
    trained = json.loads((home / TRAINED).read_text())
    outcome = TrainingOutcome.from_dict(trained["outcome"])
    other = next(r for r in outcome.results if r.name != outcome.best)
    mlflow_store.register_challenger(_churn(), other.model_uri, other.run_id, {"candidate": other.name})
    days = [LABELLED_START + i * ONE for i in range(7, (SCORED_DAY - LABELLED_START).days)]
    intervals = [[d.isoformat(), (d + ONE).isoformat()] for d in days]
    score_intervals(_churn(), pin_models(_churn()), intervals, _warehouse(home), RUN_ID)


def write_predictions(home: Path) -> None:
    from pipelines.inference.batch import pin_models, score_intervals

    interval = [SCORED_DAY.isoformat(), (SCORED_DAY + ONE).isoformat()]
    score_intervals(_churn(), pin_models(_churn()), [interval], _warehouse(home), RUN_ID)


def _table(home: Path, name: str, order: str = "as_of, entity_id") -> pd.DataFrame:
    """A table of the state's SQLite warehouse in a stable order; empty when it does not exist yet."""
    db = sqlite3.connect(home / "warehouse.db")
    try:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        return pd.read_sql(f"SELECT * FROM {name} ORDER BY {order}", db) if exists else pd.DataFrame()
    finally:
        db.close()


def check_predictions(home: Path) -> list[str]:
    """Each scored interval is whole in the warehouse: the champion's and the challenger's rows for the
    same entities, or neither (one transaction); Parquet partitions read."""
    problems = _zone_problems("predictions", "scores") + _zone_problems("predictions", "shadow")
    served, shadow = _table(home, "predictions"), _table(home, "shadow_predictions")
    for as_of, rows in served.groupby("as_of"):
        theirs = shadow[shadow["as_of"] == as_of]
        if sorted(rows["entity_id"]) != sorted(theirs["entity_id"]):
            problems.append(f"{as_of}: {len(rows)} predictions but {len(theirs)} shadow predictions")
    return problems


def seen_predictions(home: Path) -> dict[str, Any]:
    names = ("predictions", "shadow_predictions")
    tables = {name: _table(home, name).drop(columns=["airflow_run_id"]) for name in names}
    return {
        "warehouse": {name: [len(t), _digest(t)] for name, t in tables.items()},
        "partitions": {kind: _zone_seen("predictions", kind) for kind in ("scores", "shadow")},
    }


def write_drift(home: Path) -> None:
    from pipelines.monitoring.monitor import decide_night, measure

    night = SCORED_DAY
    measure(_churn(), night - ONE, night, _warehouse(home), RUN_ID)
    decide_night(_churn(), night, _warehouse(home), in_flight=0)


def check_drift(home: Path) -> list[str]:
    """A decision only for a night with its history row; the reports a history row names exist whole."""
    problems = []
    tables = {n: _table(home, n, "night") for n in ("drift_history", "retrain_decisions")}
    nights = set(tables["drift_history"].get("night", []))
    for night in tables["retrain_decisions"].get("night", []):
        if night not in nights:
            problems.append(f"a retrain decision for {night} without its drift history row")
    for payload in tables["drift_history"].get("payload", []):
        report = json.loads(payload).get("report_html")
        if report and not Path(report).read_text().rstrip().endswith("</html>"):
            problems.append(f"{report} is cut short")
    return problems


_VOLATILE = {"seconds", "measured_at", "decided_at", "mlflow_run_id", "airflow_run_id", "duration_seconds"}


def seen_drift(home: Path) -> dict[str, Any]:
    rows = {}
    for name in ("drift_history", "retrain_decisions"):
        table = _table(home, name, "night")
        rows[name] = [{k: v for k, v in json.loads(p).items() if k not in _VOLATILE} for p in table.get("payload", [])]
    reports = (
        sorted(p.name for p in (home / "reports" / "churn" / "drift").glob("*"))
        if (home / "reports" / "churn" / "drift").exists()
        else []
    )
    return _normalized({"rows": rows, "reports": reports}, home)


# -- at once: materialization beside online reads and a training-set build -------------------------

WEEK = [(DAY + i * ONE, DAY + (i + 1) * ONE) for i in range(4)]  # four days: longer than the reads


def materialize_week(home: Path) -> int:
    from pipelines.features.materialize import materialize_intervals

    return sum(materialize_intervals(_churn(), [interval]) for interval in WEEK)


def read_online_repeatedly(home: Path) -> dict[str, Any]:
    """Online reads of every entity, 20 times, while other processes write: the reads that failed."""
    import time

    errors: list[str] = []
    for _ in range(20):
        try:
            _online(DAY)
        except Exception as exc:  # any failed read is what is counted
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        time.sleep(0.05)
    return {"reads": 20, "failed": len(errors), "errors": sorted(set(errors))}


def skew_after_week(home: Path) -> int:
    """Entities whose online features were compared with the offline ones (any difference raises)."""
    from pipelines.features.materialize import check_interval_skew

    return check_interval_skew(_churn(), *WEEK[-1])


def predictions_in_warehouse(home: Path) -> dict[str, int]:
    """Rows of SCORED_DAY in the warehouse's two tables, and the distinct entities among them."""
    from pipelines.stores import warehouse

    counts = {}
    for name in (warehouse.PREDICTIONS, warehouse.SHADOW):
        frame = warehouse.read_interval(_warehouse(home), name, "churn", SCORED_DAY + ONE)
        counts[name] = len(frame)
        counts[f"{name}_entities"] = frame["entity_id"].nunique()
    return counts


def write_predictions_while_the_warehouse_restarts(home: Path) -> None:
    """:func:`write_predictions`, with every other connection to the warehouse cut (``pg_terminate_backend``,
    what a server restart does to its clients) just as the first rows are about to be inserted."""
    import sys

    import sqlalchemy as sa

    def cut(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name == "_bulk_insert":
            if frame.f_globals.get("__name__") == "pipelines.stores.warehouse":
                sys.setprofile(None)
                engine = sa.create_engine(_warehouse(home), isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                engine.dispose()

    sys.setprofile(cut)
    try:
        write_predictions(home)
    finally:
        sys.setprofile(None)
