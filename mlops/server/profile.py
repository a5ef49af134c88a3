"""The server profile's settings as processes on this machine: the compose file's, with local hosts.

The variables the compose file interpolates come, as with ``docker compose``,
from the environment first, then from an env file: ``$MLOPS_HOME/server/.env``
here, written from ``.env.example`` the first time with fresh secrets and the
locations of this machine's services (:data:`PROCESS_LOCATIONS`). What differs
from the containers is only where things are; each difference is listed below.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from mlops.server import compose
from pipelines import settings

# Where the compose file's services are when they run as processes on one machine.
PROCESS_LOCATIONS = {
    "POSTGRES_HOST": "127.0.0.1",
    "REDIS_HOST": "127.0.0.1",
    "AIRFLOW_API_HOST": "127.0.0.1",
    "MLFLOW_HOST": "127.0.0.1",
    "MLFLOW_BIND": "127.0.0.1",  # reachable from this machine only, as the compose file publishes them
    "AIRFLOW_API_BIND": "127.0.0.1",
    "STATSD_HOST": "127.0.0.1",
}
# The machine's PostgreSQL (trust auth for local connections): the role that creates the
# project's role and databases. In a container the project's role is the server's superuser.
PROCESS_ADMIN = {"POSTGRES_ADMIN_USER": "postgres"}
SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
)

# Services of the compose file that this machine already runs, and the one-off set-up service.
MACHINE_SERVICES = ("postgres", "redis")
INIT_SERVICE = "airflow-init"


def server_dir() -> Path:
    return settings.mlops_home() / "server"


def env_file() -> Path:
    return server_dir() / ".env"


def logs_dir() -> Path:
    return settings.mlops_home() / "logs"


def _new_secret(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(32)


def ensure_env_file() -> Path:
    """``$MLOPS_HOME/server/.env``, written from ``.env.example`` when missing: every secret
    generated, the locations of this machine's services. Never rewritten once it exists."""
    path = env_file()
    if path.exists():
        return path
    lines = []
    for line in (settings.REPO_ROOT / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in SECRETS:
            line = f"{key}={_new_secret(key)}"
        elif key in PROCESS_LOCATIONS:
            line = f"{key}={PROCESS_LOCATIONS[key]}"
        lines.append(line)
    lines += ["", "# Only for processes on this machine (mlops/server/profile.py):"]
    lines += [f"{k}={v}" for k, v in {**PROCESS_LOCATIONS, **PROCESS_ADMIN}.items() if f"{k}=" not in "\n".join(lines)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".env.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)  # it holds the secrets
    tmp.replace(path)
    return path


def variables() -> dict[str, str]:
    """What the compose file is interpolated with here: the env file, then the environment over it."""
    values = {**PROCESS_LOCATIONS, **PROCESS_ADMIN}
    values.update(compose.read_env_file(ensure_env_file()))
    values.update(os.environ)
    values["MLOPS_HOME"] = str(settings.mlops_home())
    values["MLOPS_REPO"] = str(settings.REPO_ROOT)
    return values


def services() -> dict[str, compose.Service]:
    return compose.load(variables())


def process_services(profiles: tuple[str, ...] = ()) -> list[compose.Service]:
    """The services ``make up`` starts, in the compose file's order: not this machine's own,
    not the one-off set-up, not behind a profile unless asked for."""
    return [
        s
        for s in services().values()
        if s.name not in MACHINE_SERVICES
        and s.name != INIT_SERVICE
        and (not s.profiles or set(s.profiles) & set(profiles))
    ]


def replica_names(service: compose.Service) -> list[str]:
    """One name per replica (``airflow-worker-1``, ``airflow-worker-2``), or the service's name."""
    if service.replicas == 1:
        return [service.name]
    return [f"{service.name}-{i}" for i in range(1, service.replicas + 1)]


def process_environment(service: compose.Service, replica: str) -> dict[str, str]:
    """The environment of one process: this one's, then the service's own from the compose file.

    Replicas of a service share a host here, unlike containers: each gets its own
    ``HOSTNAME`` (the Celery node name its healthcheck pings) and, for Celery
    workers, its own port for the log server.
    """
    from mlops.airflow_admin import command_environment

    env = command_environment()  # this process's, less what quietened its own logs; the venv's bin first
    env.update(service.environment)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # see the Makefile
    env["HOSTNAME"] = replica if service.replicas > 1 else socket.gethostname()  # as in a container
    if service.replicas > 1 and service.command[:3] == ("airflow", "celery", "worker"):
        index = int(replica.rsplit("-", 1)[1])
        base = int(env.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "8793"))
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(base + 2 * (index - 1))  # 8794 is the triggerer's
    return env


def process_command(service: compose.Service, replica: str) -> list[str]:
    """The service's command; a Celery worker replica also gets its node name."""
    command = list(service.command)
    if service.replicas > 1 and command[:3] == ["airflow", "celery", "worker"]:
        command += ["--celery-hostname", f"celery@{replica}"]
    return command


def init_environment() -> dict[str, str]:
    """The environment of the set-up step (``mlops server init``), as the airflow-init service has it."""
    values = variables()
    env = process_environment(compose.load(values)[INIT_SERVICE], INIT_SERVICE)
    env.update({k: values[k] for k in ("POSTGRES_ADMIN_USER", "POSTGRES_ADMIN_PASSWORD") if k in values})
    return env
