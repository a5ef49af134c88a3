"""`mlops demo`, run once per test run as `make demo` runs it, for the tests that read its state.

The whole loop's figures (tests/e2e/test_demo_loop.py) and Airflow's UI on the demo's
state (tests/e2e/test_ui_plugin.py) read the same run: both modules are in the xdist
group ``GROUP``, so one worker runs the demo and then both, and the session fixture
``demo_run`` (tests/conftest.py) runs it on the first request.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

GROUP = "demo"
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class DemoRun:
    home: Path  # its $MLOPS_HOME
    configs: Path  # the repository's configs, retries a second apart
    printed: str  # what `mlops demo` printed
    mlflow_ui: str  # where the tests serve MLflow's UI on it (the tasks' extra links were made for it)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process on this state: none of the test process's Airflow, MLflow or
        project variables (each names the worker's own state), the state's, ``extra``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW", "MLFLOW_"))}
        env |= {"MLOPS_HOME": str(self.home), "MLOPS_CONFIGS": str(self.configs)}
        env |= {"AIRFLOW_HOME": str(self.home / "airflow"), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
        return env | {"MLOPS_MLFLOW_UI_URL": self.mlflow_ui} | extra


def run(folder: Path) -> DemoRun:
    """`mlops demo` in a process of its own, on a fresh state in ``folder``, with the repository's configs
    as they are (warm-up included) but retries a second apart. Fails the requesting test if it fails.

    A task's extra link is made when the task ends, with the MLflow UI address of that moment
    (``$MLOPS_MLFLOW_UI_URL``): the port the tests will serve MLflow's UI on is chosen first."""
    from mlops.server import isolated

    configs = folder / "configs"
    configs.mkdir()
    for path in (REPO / "configs").glob("*.yaml"):
        raw = yaml.safe_load(path.read_text())
        raw["schedule"]["retry_delay_minutes"] = 0.01
        (configs / path.name).write_text(yaml.safe_dump(raw, sort_keys=False))
    demo = DemoRun(folder / "var", configs, "", f"http://127.0.0.1:{isolated.free_port()}")
    done = subprocess.run([str(BIN / "mlops"), "demo"], env=demo.env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return DemoRun(demo.home, configs, done.stdout, demo.mlflow_ui)
