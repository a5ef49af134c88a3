"""``mlops server init``: what the compose file's airflow-init service does, and ``make up`` before it starts anything.

Runs with the Airflow services' environment (the compose file's
``x-airflow-common``): creates the project's role and databases on the
PostgreSQL server when missing, migrates Airflow's database (FAB's tables
included), creates or updates the admin user from ``AIRFLOW_ADMIN_USER`` /
``AIRFLOW_ADMIN_PASSWORD``, then runs ``mlops init``. Idempotent.
"""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

# The databases of the profile, by the suffix after MLOPS_DB_PREFIX.
DATABASES = ("airflow", "mlflow", "feast", "source", "warehouse")


def _server_url(database: str) -> sa.URL:
    """A URL for ``database`` on the metadata DB's server, as the setting's user (or the admin user)."""
    url = sa.make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).set(database=database)
    admin = os.environ.get("POSTGRES_ADMIN_USER")
    if admin:
        url = url.set(username=admin, password=os.environ.get("POSTGRES_ADMIN_PASSWORD") or None)
    return url


def database_names() -> dict[str, str]:
    prefix = os.environ.get("MLOPS_DB_PREFIX", "mlops")
    return {suffix: f"{prefix}_{suffix}" for suffix in DATABASES}


def ensure_databases(wait_seconds: float = 60) -> list[str]:
    """Create the role (with an admin user configured) and the missing databases; return those created."""
    project = sa.make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    engine = sa.create_engine(_server_url("postgres"), isolation_level="AUTOCOMMIT")
    created = []
    try:
        deadline = time.monotonic() + wait_seconds
        while True:  # the server may still be starting (a container's first boot)
            try:
                conn = engine.connect()
                break
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        with conn:
            role = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": project.username})
            quote = conn.dialect.identifier_preparer.quote  # names in DDL cannot be bound parameters
            if not role:
                password = project.password or ""
                conn.execute(sa.text(f"CREATE ROLE {quote(project.username)} LOGIN PASSWORD :p").bindparams(p=password))
            for name in database_names().values():
                exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name})
                if not exists:
                    conn.execute(sa.text(f"CREATE DATABASE {quote(name)} OWNER {quote(project.username)}"))
                    created.append(name)
    finally:
        engine.dispose()
    return created


def ensure_admin_user() -> str:
    """Create the admin user, or set its password to the configured one; return what was done."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    username = os.environ.get("AIRFLOW_ADMIN_USER", "admin")
    password = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("AIRFLOW_ADMIN_PASSWORD is not set: the admin user needs a password (see .env.example)")
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        user = sm.find_user(username=username)
        if user is None:
            role = sm.find_role("Admin")
            user = sm.add_user(username, "Admin", "User", f"{username}@localhost", role, password)
            if not user:
                raise SystemExit(f"could not create the Airflow user {username!r}")
            return "created"
        sm.reset_password(user.id, password)
        return "kept (password set from the environment)"


def run() -> int:
    """The whole set-up; prints one line per step (no secret)."""
    from mlops import airflow_admin

    created = ensure_databases()
    print(
        f"databases on {_server_url('postgres').render_as_string(hide_password=True)}: "
        f"{', '.join(created) if created else 'all present'}"
    )
    airflow_admin.prepare(quiet=False)
    from mlops.cli import cmd_init

    status = cmd_init(None)  # migrates Airflow's DB first (FAB's tables too), then the rest
    print(f"admin user {os.environ.get('AIRFLOW_ADMIN_USER', 'admin')}: {ensure_admin_user()}")
    return status
