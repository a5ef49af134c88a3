"""Benchmark: the CPU a process spends importing what the pipeline's tasks import.

    .venv/bin/python bench/imports.py [--repeats 3]

Each line is one fresh Python process (bytecode cached, as after the first run) that imports
a library and reports its own CPU time (``time.process_time``): the best of ``--repeats``. Feast
is measured twice, plain (``import feast``: typeguard instruments its classes as they load) and
as the project imports it (``pipelines.stores.feast_import.load``: the same modules, without
that instrumentation); the ratio is ours over raw. Every Celery task of the server profile, each
test worker and each ``mlops`` command pays these once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "feast (plain import)": "import feast",
    "feast (pipelines.stores.feast_import.load)": "from pipelines.stores import feast_import; feast_import.load()",
    "great_expectations": "import great_expectations",
    "evidently": "import evidently",
    "mlflow": "import mlflow",
    "sklearn": "import sklearn",
    "xgboost": "import xgboost",
    "pandas": "import pandas",
}


def cpu_seconds(statement: str) -> float:
    """CPU seconds of ``statement`` in a fresh interpreter (startup excluded)."""
    code = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    best = {}
    for name, statement in CASES.items():
        cpu_seconds(statement)  # writes the bytecode cache if it is missing
        best[name] = min(cpu_seconds(statement) for _ in range(args.repeats))
        print(f"{name:45s} {best[name]:6.2f} s CPU")
    raw, ours = best["feast (plain import)"], best["feast (pipelines.stores.feast_import.load)"]
    print(f"feast: ours / raw = {ours / raw:.2f} ({raw - ours:.2f} s of CPU less per process)")


if __name__ == "__main__":
    main()
