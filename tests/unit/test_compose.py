"""The server profile's files, checked without a Docker engine: the compose file against the
Compose specification's schema, its shared settings, and that `make up` runs what it declares."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.server import compose, profile
from pipelines import settings

REPO = settings.REPO_ROOT
SECRETS = {"POSTGRES_PASSWORD": "pw", "AIRFLOW_ADMIN_PASSWORD": "ad", "AIRFLOW_FERNET_KEY": "fk",
           "AIRFLOW_JWT_SECRET": "jwt", "AIRFLOW_API_SECRET_KEY": "sk"}  # fmt: skip
AIRFLOW_SERVICES = [
    "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    "airflow-triggerer", "airflow-worker",
]  # fmt: skip


def _validate(path: Path, schema: str = "vendor.compose-spec") -> subprocess.CompletedProcess:
    checker = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(checker), "--builtin-schema", schema, str(path)], capture_output=True, text=True)


def test_the_compose_file_validates_against_the_compose_specification():
    done = _validate(REPO / "docker-compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ci_workflow_for_forks_is_a_valid_github_workflow_that_runs_ci_run():
    path = REPO / ".github" / "workflows" / "ci.yml"
    done = _validate(path, "vendor.github-workflows")
    assert done.returncode == 0, done.stdout + done.stderr
    import yaml

    steps = yaml.safe_load(path.read_text())["jobs"]["test"]["steps"]
    assert steps[-1]["run"] == "bash .ci/run"


def test_a_malformed_compose_file_is_refused_by_the_same_check(tmp_path):
    broken = (REPO / "docker-compose.yaml").read_text().replace("    healthcheck:", "    health_check:", 1)
    (tmp_path / "docker-compose.yaml").write_text(broken)
    done = _validate(tmp_path / "docker-compose.yaml")
    assert done.returncode != 0
    assert "health_check" in done.stdout + done.stderr


def test_interpolation_follows_the_compose_specification():
    values = {"SET": "v", "EMPTY": ""}
    assert compose.interpolate("${SET:-d} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $SET $$HOME", values) == "v d d  v $HOME"
    assert compose.interpolate("${SET:+alt}${UNSET:+alt}", values) == "alt"
    with pytest.raises(compose.ComposeError, match=r"required variable UNSET is missing: set UNSET in \.env"):
        compose.interpolate("${UNSET:?set UNSET in .env}", values, "services.x")
    with pytest.raises(compose.ComposeError, match="EMPTY"):
        compose.interpolate("${EMPTY:?needed}", values)
    with pytest.raises(compose.ComposeError, match="malformed"):
        compose.interpolate("${not a variable}", values)


def test_a_missing_secret_stops_with_the_variable_named():
    with pytest.raises(compose.ComposeError, match="AIRFLOW_JWT_SECRET"):
        compose.load({k: v for k, v in SECRETS.items() if k != "AIRFLOW_JWT_SECRET"})


def test_every_airflow_component_shares_the_secrets_and_the_execution_api_url():
    services = compose.load(SECRETS)
    shared = [
        "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
    ]  # fmt: skip
    for key in shared:
        values = {name: services[name].environment.get(key) for name in AIRFLOW_SERVICES}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)
    env = services["airflow-worker"].environment
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "jwt" and env["AIRFLOW__CORE__FERNET_KEY"] == "fk"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["FEAST_FS_YAML_FILE_PATH"].endswith("feature_repo/feature_store.server.yaml")


def test_no_secret_is_written_in_the_compose_file_and_env_example_lists_every_variable():
    lines = (REPO / "docker-compose.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    for secret in SECRETS:
        assert re.findall(rf"\$\{{{secret}([^}}]*)\}}", text), secret
        assert all(op.startswith(":?") for op in re.findall(rf"\$\{{{secret}([^}}]*)\}}", text)), secret
    example = compose.read_env_file(REPO / ".env.example")
    assert all(example[s] == "" for s in SECRETS), "the example must leave every secret empty"
    inside_the_image = {
        "MLOPS_HOME", "MLOPS_REPO", "MLOPS_IMAGE", "MLFLOW_BIND", "AIRFLOW_API_BIND", "AIRFLOW_API_PUBLISH", "HOSTNAME",
    }  # fmt: skip
    assert used - inside_the_image <= set(example), sorted(used - inside_the_image - set(example))


def test_make_up_runs_the_services_the_compose_file_declares(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "var"))
    for key in SECRETS:
        monkeypatch.delenv(key, raising=False)
    declared = compose.load({**SECRETS, **profile.PROCESS_LOCATIONS})
    started = {s.name: s for s in profile.process_services()}
    expected = [
        name
        for name, s in declared.items()
        if name not in profile.MACHINE_SERVICES and name != profile.INIT_SERVICE and not s.profiles
    ]
    assert list(started) == expected
    assert set(expected) == {
        "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
        "airflow-worker", "mlflow",
    }  # fmt: skip
    assert profile.replica_names(started["airflow-worker"]) == ["airflow-worker-1", "airflow-worker-2"]
    for name, service in started.items():
        for replica in profile.replica_names(service):
            command = profile.process_command(service, replica)
            assert command[: len(service.command)] == list(service.command)
            env = profile.process_environment(service, replica)
            differs = {k for k, v in service.environment.items() if env.get(k) != v}
            assert not differs, (name, differs)
            # Local hosts, the generated secrets of the state folder's env file.
            assert "@127.0.0.1:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    written = compose.read_env_file(profile.env_file())
    assert all(len(written[s]) >= 32 for s in SECRETS), "every secret generated"
    assert profile.env_file().stat().st_mode & 0o077 == 0, "the env file is private"
    worker_ports = {
        profile.process_environment(started["airflow-worker"], r)["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
        for r in profile.replica_names(started["airflow-worker"])
    }
    assert len(worker_ports) == 2


def test_the_image_pins_the_locked_airflow_and_installs_the_exported_lock():
    lock = (REPO / "uv.lock").read_text()
    airflow = re.search(r'\[\[package\]\]\nname = "apache-airflow"\nversion = "([^"]+)"', lock).group(1)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={airflow}\n" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python3.11" in dockerfile
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in (REPO / "docker-compose.yaml").read_text()
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("#")]  # noqa: E731
    for name, extra in (("requirements.txt", []), ("requirements-spark.txt", ["--extra", "spark"])):
        exported = subprocess.run(
            [uv, "export", "--frozen", "--no-dev", "--no-emit-project", *extra, "--quiet"],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if exported.returncode != 0:
            pytest.fail(exported.stderr)
        committed = (REPO / "docker" / name).read_text()
        assert strip(committed) == strip(exported.stdout), f"docker/{name} is stale: run `make requirements`"
