"""The hardened surface (issue 17): SQL built only from quoted names and bound values, private files
private. Secrets planted in connections and the environment are looked for in everything a whole loop
writes and prints by tests/e2e/test_onboarding.py (the replay of a user's source); paths that come from
a request are held inside $MLOPS_HOME by tests/integration/test_ui_routes.py."""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import pytest

from pipelines import settings
from tests import demo

SQL_CALLS = {"text", "execute", "exec_driver_sql", "executemany", "executescript", "read_sql", "read_sql_query"}
QUOTERS = {
    "quote",
    "quoted",
}  # the identifier quoting of SQLAlchemy's dialect, and of pipelines.stores.sqlite_integrity
CODE = ("pipelines", "mlops", "dags", "plugins")


def _built_statements() -> list[str]:
    """SQL statements built from strings (f-strings, concatenation, .format) whose pieces are not quoted names."""
    found = []
    for root in CODE:
        for path in sorted((settings.REPO_ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                statement = node.args[0]
                if name not in SQL_CALLS:
                    continue
                where = f"{path.relative_to(settings.REPO_ROOT)}:{node.lineno}"
                if isinstance(statement, ast.BinOp) or (
                    isinstance(statement, ast.Call) and getattr(statement.func, "attr", "") == "format"
                ):
                    found.append(f"{where}: {ast.unparse(statement)[:100]}")
                elif isinstance(statement, ast.JoinedStr):
                    for piece in statement.values:
                        if isinstance(piece, ast.FormattedValue) and not _quoted(piece.value):
                            found.append(f"{where}: {ast.unparse(piece.value)} in {ast.unparse(statement)[:80]}")
    return found


def _quoted(value: ast.expr) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in QUOTERS


def test_sql_is_built_from_bound_values_and_quoted_names_only():
    assert _built_statements() == []


@pytest.mark.xdist_group(demo.GROUP)
def test_files_holding_secrets_are_private_and_nothing_in_the_state_is_world_writable(demo_run):
    home = demo_run.home
    private = [home / "airflow" / "airflow.cfg", *home.glob("airflow/*password*")]
    loose = [str(p) for p in private if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == [], "files holding the fernet key or passwords readable by others"
    writable = [str(p.relative_to(home)) for p in [home, *home.rglob("*")] if p.stat().st_mode & stat.S_IWOTH]
    assert writable == []


def test_the_scan_finds_an_f_string_statement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bad = tmp_path / "pipelines" / "bad.py"
    bad.parent.mkdir()
    bad.write_text('def f(conn, table):\n    conn.execute(f"DELETE FROM {table}")\n')
    monkeypatch.setattr(settings, "REPO_ROOT", tmp_path)
    for root in CODE[1:]:
        (tmp_path / root).mkdir()
    assert _built_statements() == ["pipelines/bad.py:2: table in f'DELETE FROM {table}'"]


def test_mlops_ui_listens_on_loopback_only(tmp_path):
    """`mlops ui` (make ui) on a new state: the API server on 127.0.0.1, no log server on any interface."""
    import os
    import subprocess
    import time
    import urllib.request

    import psutil

    from mlops.server import isolated

    port = isolated.free_port()
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_HOME", "AIRFLOW", "MLFLOW_"))}
    env |= {"MLOPS_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")}
    ui = subprocess.Popen(
        [str(demo.BIN / "mlops"), "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and ui.poll() is None, "mlops ui did not come up"
                time.sleep(1)
        time.sleep(5)  # the scheduler and triggerer start their log servers, when they do, after the API
        tree = [psutil.Process(ui.pid), *psutil.Process(ui.pid).children(recursive=True)]
        listening = {
            (c.laddr.ip, c.laddr.port)
            for p in tree
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", port)}, listening
        password_file = home / "airflow" / "simple_auth_manager_passwords.json.generated"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    finally:
        ui.terminate()
        assert ui.wait(60) == 0


def test_the_licence_page_lists_every_locked_package():
    from tests.reliability import licences

    assert licences.PAGE.read_text() == licences.render(), (
        "docs/reliability/licences.md is not current: run `python -m tests.reliability.licences`"
    )
