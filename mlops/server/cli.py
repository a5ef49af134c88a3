"""The ``mlops server`` commands (``make up`` / ``make down``)."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_up(args: argparse.Namespace) -> int:
    from mlops.server import processes, profile

    try:
        processes.up(profiles=tuple(args.profile or ()), timeout=args.timeout)
    except processes.ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    variables = profile.variables()
    user = variables.get("AIRFLOW_ADMIN_USER", "admin")
    print(
        f"\nAirflow UI and REST API: http://localhost:{variables.get('AIRFLOW_API_PORT', '8080')}  "
        f"(user {user}, password AIRFLOW_ADMIN_PASSWORD in {profile.env_file()})\n"
        f"MLflow: http://127.0.0.1:{variables.get('MLFLOW_PORT', '5000')}\n"
        f"Logs: {profile.logs_dir()}   Stop with `make down`."
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from mlops.server import processes

    stopped = processes.down(grace=args.grace)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mlops.server import processes

    found = processes.status(check_health=not args.quick)
    if args.json:
        print(json.dumps(found, indent=2))
    elif not found:
        print("not running (`make up` starts it)")
    for name, entry in ({} if args.json else found).items():
        state = (
            "stopped" if not entry["running"] else "running" if entry["healthy"] is None
            else "healthy" if entry["healthy"] else "running, not healthy"
        )  # fmt: skip
        print(f"{name:24} pid {entry['pid']:>7}  {state:22} {entry['log']}")
    if not found or not any(e["running"] for e in found.values()):
        return 3
    return 0 if all(e["healthy"] is not False for e in found.values()) else 1


def cmd_run(args: argparse.Namespace) -> int:
    """A command with the Airflow services' environment (``docker compose run airflow-worker ...`` in a container)."""
    import os

    from mlops.server import profile

    command = [c for c in args.command_line if c != "--"] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise SystemExit("usage: mlops server run -- COMMAND [ARGS...]")
    env = profile.init_environment()
    os.execvpe(command[0], command, env)
    return 0  # not reached


def cmd_init(args: argparse.Namespace) -> int:
    from mlops.server import setup

    return setup.run()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("server", help="the server profile (docker-compose.yaml) as processes on this machine")
    ssub = p.add_subparsers(dest="server_command", required=True)
    u = ssub.add_parser("up", help="set up, then start every service that is not running; wait until healthy")
    u.add_argument("--profile", action="append", help="also a service behind this compose profile (flower)")
    u.add_argument("--timeout", type=float, default=240, help="seconds to wait for the healthchecks")
    u.set_defaults(func=cmd_up)
    d = ssub.add_parser("down", help="stop exactly what `up` started")
    d.add_argument("--grace", type=float, default=30, help="seconds between SIGTERM and SIGKILL")
    d.set_defaults(func=cmd_down)
    s = ssub.add_parser("status", help="each process: running, healthy; exit 0 all healthy, 1 some not, 3 none")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quick", action="store_true", help="only whether each process runs, no healthchecks")
    s.set_defaults(func=cmd_status)
    r = ssub.add_parser("run", help="run a command with the services' settings, e.g. `-- mlops simulate --days 20`")
    r.add_argument("command_line", nargs=argparse.REMAINDER)
    r.set_defaults(func=cmd_run)
    ssub.add_parser(
        "init", help="databases, Airflow DB, admin user, mlops init (the compose file's airflow-init)"
    ).set_defaults(func=cmd_init)
