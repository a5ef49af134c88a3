"""The project's Airflow settings, written where Airflow itself reads them: ``$AIRFLOW_HOME/airflow.cfg``.

Every entry point reads the same file: the plain ``airflow`` command with only
``AIRFLOW_HOME`` set, ``mlops airflow``, ``make ui`` and the in-process runs.
Only the options below are managed; whatever else a user writes into the file
is kept, comments included. Environment variables (``AIRFLOW__CORE__...``) still
win over the file, as Airflow documents, so a deployment can override any of
these defaults without editing it. Nothing here imports Airflow: this runs
before Airflow reads its configuration.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipelines import settings

# [mlops] home: where $MLOPS_HOME is, relative to $AIRFLOW_HOME, for processes that
# only know AIRFLOW_HOME (pipelines.settings.mlops_home reads it).
MLOPS_SECTION = "mlops"


def managed_options() -> dict[tuple[str, str], str | None]:
    """(section, option) -> value this project runs Airflow with; None removes the option."""
    home = os.path.relpath(settings.mlops_home(), settings.airflow_home())
    return {
        ("core", "dags_folder"): str(settings.dags_dir()),
        ("core", "plugins_folder"): str(settings.REPO_ROOT / "plugins"),
        ("core", "load_examples"): "False",
        ("core", "dags_are_paused_at_creation"): "True",
        ("core", "simple_auth_manager_users"): "admin:admin",
        # Airflow's own SQLite DB is shared by the scheduler, the API server and the
        # CLI: wait for a lock instead of failing with "database is locked". The same
        # file serves a process on PostgreSQL (the server profile), so the arguments
        # are decided by the process that connects, not by the one that wrote the file.
        ("database", "sql_alchemy_connect_args"): "mlops.airflow_config.CONNECT_ARGS",
        (MLOPS_SECTION, "home"): home,
    }


def config_path() -> Path:
    return settings.airflow_home() / "airflow.cfg"


def ensure() -> bool:
    """Write or update ``airflow.cfg`` with the managed options and a fernet key; True if it changed.

    A fernet key already in the file (or in the ``fernet.key`` file of earlier
    versions) is kept: a new key would make every stored connection secret unreadable.
    """
    path = config_path()
    text = path.read_text() if path.exists() else ""
    updated = text
    for (section, option), value in managed_options().items():
        updated = set_option(updated, section, option, value)
    if not get_option(updated, "core", "fernet_key"):
        updated = set_option(updated, "core", "fernet_key", _fernet_key())
    if updated == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".cfg.tmp")
    tmp.write_text(updated)
    tmp.chmod(0o600)  # it holds the fernet key
    tmp.replace(path)
    return True


def _metadata_db_is_sqlite() -> bool:
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if url is None and config_path().exists():
        url = get_option(config_path().read_text(), "database", "sql_alchemy_conn")
    return url is None or url.startswith("sqlite")


def _connect_args() -> dict[str, object]:
    return dict(settings.SQLITE_CONNECT_ARGS) if _metadata_db_is_sqlite() else {}


def __getattr__(name: str) -> object:
    """``CONNECT_ARGS``: what Airflow passes to its metadata DB driver (``[database] sql_alchemy_connect_args``
    names it), computed when Airflow reads it: the SQLite busy timeout, or nothing for a server database."""
    if name == "CONNECT_ARGS":
        return _connect_args()
    raise AttributeError(name)


def _fernet_key() -> str:
    legacy = settings.airflow_home() / "fernet.key"
    if legacy.exists():
        return legacy.read_text().strip()
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def _option_line(option: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(option)}\s*[=:]", re.IGNORECASE)


def _section_bounds(lines: list[str], section: str) -> tuple[int, int] | None:
    """Index of the section's header line and of the line after its last line."""
    start = None
    for i, line in enumerate(lines):
        match = _SECTION.match(line)
        if match and start is not None:
            return start, i
        if match and match.group(1).strip().lower() == section.lower():
            start = i
    return (start, len(lines)) if start is not None else None


def get_option(text: str, section: str, option: str) -> str | None:
    """The value of ``option`` in ``section`` of an INI text, None when absent."""
    lines = text.splitlines()
    bounds = _section_bounds(lines, section)
    if bounds is None:
        return None
    pattern = _option_line(option)
    for line in lines[bounds[0] + 1 : bounds[1]]:
        if pattern.match(line):
            return re.split(r"[=:]", line, maxsplit=1)[1].strip()
    return None


def set_option(text: str, section: str, option: str, value: str | None) -> str:
    """``text`` with ``option = value`` in ``section`` (added, replaced, or removed for None),
    every other line (comments included) as it was."""
    lines = text.splitlines()
    bounds = _section_bounds(lines, section)
    if bounds is None:
        if value is None:
            return text
        lines += ([""] if lines and lines[-1].strip() else []) + [f"[{section}]", f"{option} = {value}"]
        return "\n".join(lines) + "\n"
    start, end = bounds
    pattern = _option_line(option)
    found = [i for i in range(start + 1, end) if pattern.match(lines[i])]
    if found:
        if value is None:
            del lines[found[0]]
        else:
            lines[found[0]] = f"{option} = {value}"
    elif value is not None:
        lines.insert(start + 1, f"{option} = {value}")
    return "\n".join(lines) + "\n"
