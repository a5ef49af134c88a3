"""`mlops`: set up, simulate, run the demo and report status.

mlops init                      # folders, Airflow DB, connections, expectation suites (idempotent)
mlops simulate --usecase churn --start 2025-01-01 --days 60 --customers 5000 --seed 7 [--drift-day 45]
mlops demo [--usecase churn] [--days 47]   # simulate, then the whole loop day by day, in-process
mlops replay --usecase NAME [--start D] [--end D] [--drift-from D] [--resume]   # the loop over a real source
mlops status [--json]
mlops lineage --usecase churn --date 2025-02-10 [--entity ID] [--json]   # one day's predictions, traced back
mlops ui [--port 8080]          # Airflow's web UI and scheduler on the same state
mlops mlflow-ui [--port 5000]   # MLflow's UI on the project's tracking store and registry
mlops airflow ARGS...           # the airflow CLI on the same state, e.g. `mlops airflow backfill create ...`
mlops feast ARGS...             # the feast CLI on feature_repo/, e.g. `mlops feast feature-views list`
mlops features rebuild          # rebuild feature partitions, then Feast's registry and online store from them
mlops server up|down|status     # the server profile (docker-compose.yaml) as processes: `make up` / `make down`
mlops relocate [--check]        # after copying or moving a state folder: its stores name the new folder
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from pipelines import settings
from pipelines.config import ConfigError, UseCase, get_usecase, scan
from pipelines.stores.source import masked_url

log = logging.getLogger("mlops")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2025-01-31") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text}")
    return value


def cmd_init(args: argparse.Namespace) -> int:
    """Create the state folders, migrate Airflow's DB, add connections and derive missing suites."""
    from mlops import airflow_admin
    from pipelines.stores.home import record_home, recorded_home
    from pipelines.validation.suites import write_missing_suites

    found = scan()  # a file that does not load is reported at the end; the others are set up
    home = settings.mlops_home()
    home.mkdir(parents=True, exist_ok=True)
    if recorded_home() is None:
        record_home()  # the folder the stores' paths will name (mlops relocate after a copy)
    settings.reports_dir().mkdir(parents=True, exist_ok=True)
    print(f"state folder: {home}")
    t0 = time.perf_counter()
    airflow_admin.migrate_db()
    print(f"airflow metadata DB ready in {settings.airflow_home()} ({time.perf_counter() - t0:.1f}s)")
    t0 = time.perf_counter()
    airflow_admin.serialize_dags()
    print(f"DAGs of {settings.dags_dir()} written to the metadata DB ({time.perf_counter() - t0:.1f}s)")
    airflow_admin.ui_login()  # the UI's password file, created private before any Airflow process writes it
    for conn_id, what in airflow_admin.ensure_connections().items():
        print(f"connection {conn_id}: {what} -> {masked_url(airflow_admin.connection_url(conn_id))}")
    for usecase in found.usecases:
        for path in write_missing_suites(usecase):
            print(f"expectation suite derived from configs/{usecase.name}.yaml: {path}")
    for error in found.errors.values():
        print(f"error: {error}", file=sys.stderr)
    return 2 if found.errors else 0


def _world(usecase: UseCase, args: argparse.Namespace) -> tuple[Any, int]:
    """The world of the generator the config names (``simulation.generator``), with the command's overrides."""
    from pipelines.simulation.writer import world_for

    defaults = usecase.simulation
    start = args.start or (defaults.start if defaults else None)
    if start is None:
        raise SystemExit(f"--start is required: configs/{usecase.name}.yaml has no simulation.start")
    try:  # --customers counts the entities of either generator
        world = world_for(usecase, start, population=args.customers, seed=args.seed, drift_day=args.drift_day)
    except ValueError as exc:
        raise SystemExit(f"cannot simulate '{usecase.name}': {exc}") from None
    return world, args.days if args.days is not None else (defaults.days if defaults else 30)


def simulate(usecase: UseCase, args: argparse.Namespace) -> Any:
    from mlops import airflow_admin
    from pipelines.simulation.writer import write_simulation

    world, days = _world(usecase, args)
    url = airflow_admin.connection_url(usecase.source.connection_id)
    settings.mlops_home().mkdir(parents=True, exist_ok=True)
    generator = usecase.simulation.generator if usecase.simulation else "churn"
    print(
        f"simulating {days} days from {world.start} for {world.population} {usecase.entity.name} values "
        f"({generator} generator, seed {world.seed}"
        f"{'' if world.drift_day is None else f', drift from day {world.drift_day}'}) into {masked_url(url)}"
    )
    t0 = time.perf_counter()
    summary = write_simulation(url, usecase, world, days)
    print(
        f"  {summary.days_written} days written ({summary.activity_rows} activity rows, {summary.label_rows} labels), "
        f"{summary.days_skipped} already present, {time.perf_counter() - t0:.1f}s"
    )
    return world, days


def cmd_simulate(args: argparse.Namespace) -> int:
    simulate(get_usecase(args.usecase), args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Initialise, simulate, then replay the simulated days through the real DAGs (see mlops/replay.py)."""
    from mlops import replay

    usecase = get_usecase(args.usecase)
    if usecase.simulation is None:  # before anything is written: the source may be a real one
        raise SystemExit(
            f"error: configs/{usecase.name}.yaml has no simulation section: `mlops demo` simulates a source and "
            f"would write into {usecase.source.connection_id}. To run the loop over a real source's history, use "
            f"`mlops replay --usecase {usecase.name}`."
        )
    cmd_init(args)
    world, days = simulate(usecase, args)
    drift = world.start + dt.timedelta(days=world.drift_day) if world.drift_day is not None else None
    return replay.run(usecase, world.start, world.start + dt.timedelta(days=days), drift)


def cmd_replay(args: argparse.Namespace) -> int:
    """The whole loop over the history of the use case's source, day by day, read-only on the source."""
    from mlops import airflow_admin, replay

    usecase = get_usecase(args.usecase)
    state = replay.resume_point(usecase) if args.resume else None
    cmd_init(args)  # the metadata DB first: the source's connection may be defined there
    url = airflow_admin.connection_url(usecase.source.connection_id)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise SystemExit(f"error: the source {usecase.source.connection_id} ({masked_url(url)}) does not exist")
    found = replay.source_days(usecase)
    if found is None and state is None:
        raise SystemExit(f"error: the source of {usecase.name} ({masked_url(url)}) has no rows to replay")
    if state is not None:
        start = dt.date.fromisoformat(state["start"])
        end = args.end or dt.date.fromisoformat(state["end"])
        drift = args.drift_from or (dt.date.fromisoformat(state["drift_from"]) if state["drift_from"] else None)
    else:
        assert found is not None
        start = args.start or max(found[0], usecase.schedule.start_date)
        end = args.end or found[1] + dt.timedelta(days=1)
        drift = args.drift_from
    if end <= start:
        raise SystemExit(f"error: nothing to replay: --end {end} is not after --start {start}")
    if found is not None:
        print(f"source {masked_url(url)}: rows from {found[0]} to {found[1]} (read only)")
    return replay.run(usecase, start, end, drift, resume=state)


def cmd_ui(args: argparse.Namespace) -> int:
    """Start Airflow (api-server, scheduler, dag-processor, triggerer) on the project's state."""
    from mlops import airflow_admin

    cmd_init(args)
    env = airflow_admin.ui_environment(args.port)
    user, password, path = airflow_admin.ui_login()
    print(
        f"\nAirflow UI: {env['AIRFLOW__API__BASE_URL']}  (log in as '{user}' with password '{password}', kept in "
        f"{path})\nStop with Ctrl-C.\n",
        flush=True,
    )
    from mlops import local_ui

    return local_ui.run(env, args.port)


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    """Start MLflow's UI on the project's tracking store, artefacts and registry."""
    import os

    from pipelines.stores import mlflow_store

    mlflow_store.mlflow_dir().mkdir(parents=True, exist_ok=True)
    command = mlflow_store.ui_command(args.port)
    print(
        f"MLflow UI: http://127.0.0.1:{args.port}  (store {mlflow_store.tracking_uri()}). Stop with Ctrl-C.", flush=True
    )
    bin_dir = Path(sys.executable).parent
    os.execvp(str(bin_dir / command[0]), [str(bin_dir / command[0]), *command[1:]])
    return 0  # not reached


def cmd_features_rebuild(args: argparse.Namespace) -> int:
    """Rebuild Feast's registry and online store from the definitions and feature partitions."""
    from pipelines.features.materialize import rebuild

    usecase = get_usecase(args.usecase)
    t0 = time.perf_counter()
    count = rebuild(usecase)
    print(f"{usecase.name}: registry re-applied, {count} intervals materialized ({time.perf_counter() - t0:.1f}s)")
    return 0


def run_feast_cli(argv: list[str]) -> int:
    """`mlops feast ARGS`: the feast command line on feature_repo/ and this project's state."""
    import os

    from pipelines.stores import feature_store

    os.environ["MLOPS_HOME"] = str(settings.mlops_home())
    feature_store.state_dir().mkdir(parents=True, exist_ok=True)
    feast = str(Path(sys.executable).parent / "feast")
    os.execv(feast, [feast, "--chdir", str(feature_store.repo_dir()), *argv])
    return 0  # not reached


def run_airflow_cli(argv: list[str]) -> int:
    """`mlops airflow ARGS`: the airflow command line on this project's state and DAGs."""
    import os

    from mlops import airflow_admin

    os.execvpe("airflow", ["airflow", *argv], airflow_admin.command_environment())
    return 0  # not reached


def _warehouse_url(conn_id: str) -> str | None:
    """A connection's URL, or the default one before `mlops init` made the Airflow DB."""
    from mlops import airflow_admin

    try:
        return airflow_admin.connection_url(conn_id)
    except Exception:  # no Airflow DB yet (before `mlops init`)
        return settings.default_connection_urls().get(conn_id)


def cmd_status(args: argparse.Namespace) -> int:
    """The state of every use case; use-case files that do not load are listed (exit status 2)."""
    from pipelines.config import scan
    from pipelines.reporting.status import render_status, status

    found = scan()
    data = status(found.usecases, _warehouse_url, {str(p): e for p, e in found.errors.items()})
    print(json.dumps(data, indent=2) if args.json else render_status(data))
    for error in found.errors.values():
        print(f"error: {error}", file=sys.stderr)
    return 2 if found.errors else 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """Where one day's predictions came from, across Airflow, GX, Feast, MLflow and Evidently; with
    ``--entity``, that entity's score and the top reasons stored beside it."""
    from mlops import airflow_admin
    from pipelines.reporting.lineage import render, trace

    usecase = get_usecase(args.usecase)
    if usecase.inference is None:
        print(f"error: use case '{usecase.name}' has no inference section: no predictions to trace", file=sys.stderr)
        return 2
    url = airflow_admin.connection_url(usecase.inference.connection_id)
    try:
        record = trace(usecase, args.date, url, entity=args.entity)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2, default=str) if args.json else render(record))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress of every step")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="set up folders, the Airflow DB, connections and suites").set_defaults(func=cmd_init)

    def simulation_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--usecase", default="churn")
        p.add_argument("--start", type=_date, help="first simulated day (default: the config's simulation.start)")
        p.add_argument("--days", type=_positive, help="number of days (default: the config's)")
        p.add_argument("--customers", type=_positive)
        p.add_argument("--seed", type=int)
        p.add_argument("--drift-day", type=int, help="day index from which prices, usage and churn drivers change")

    p = sub.add_parser("simulate", help="write a simulated source into the mlops_source database")
    simulation_args(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", help="init, simulate, and run the pipeline over the simulated days")
    simulation_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("replay", help="the whole loop over a real source's history, day by day (read-only)")
    p.add_argument("--usecase", default="churn")
    p.add_argument(
        "--start", type=_date, help="first day (default: the source's first, not before schedule.start_date)"
    )
    p.add_argument("--end", type=_date, help="the day after the last one (default: the day after the source's last)")
    p.add_argument("--drift-from", type=_date, help="a known change in the data: print the closed-loop figures")
    p.add_argument("--resume", action="store_true", help="carry on with a replay that was stopped")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("features", help="feature store maintenance")
    fsub = p.add_subparsers(dest="features_command", required=True)
    r = fsub.add_parser("rebuild", help="rebuild feature partitions, re-apply definitions, re-materialize them")
    r.add_argument("--usecase", default="churn")
    r.set_defaults(func=cmd_features_rebuild)

    p = sub.add_parser("ui", help="start Airflow locally on the same state (web UI, scheduler, ...)")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("mlflow-ui", help="start MLflow's UI on the project's tracking store and registry")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=cmd_mlflow_ui)

    p = sub.add_parser("lineage", help="where one day's predictions came from (model, data, checks, drift)")
    p.add_argument("--usecase", default="churn")
    p.add_argument("--date", type=_date, required=True, help="the day whose predictions to trace, e.g. 2025-02-10")
    p.add_argument(
        "--entity", metavar="ID", help="also this entity's score that day and its top reasons (inference.reasons)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_lineage)

    from mlops.server.cli import add_parser as add_server_parser

    add_server_parser(sub)
    from mlops.relocate import add_parser as add_relocate_parser

    add_relocate_parser(sub)

    p = sub.add_parser("status", help="state folder, use cases and their latest partitions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["airflow"], ["feast"]):
        from pipelines.stores.home import StateMoved, check_not_moved

        try:
            check_not_moved()
        except StateMoved as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if argv[:1] == ["airflow"]:
        return run_airflow_cli(argv[1:])
    if argv[:1] == ["feast"]:
        return run_feast_cli(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from mlops import airflow_admin

    airflow_admin.prepare(quiet=not args.verbose)
    from mlops import replay
    from pipelines.simulation.writer import SimulationMismatch
    from pipelines.stores.home import StateMoved, check_not_moved
    from pipelines.stores.source import SourceSchemaError

    try:
        if not getattr(args, "moved_ok", False):
            check_not_moved()
        return args.func(args)
    except (ConfigError, SimulationMismatch, replay.NothingToResume, SourceSchemaError, StateMoved) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
