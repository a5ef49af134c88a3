"""
### Use-case files that do not load

Not a DAG: this file fails to import, on purpose, while a file in `configs/` is
invalid, so that the Airflow UI's *Import errors* name the file and each bad
field. The other use cases keep their DAGs (every DAG file builds from the files
that load, `dagkit.usecases`). `mlops status` lists the same problems.
"""

from __future__ import annotations

from pipelines.config import ConfigError, scan

_problems = scan().error_report()
if _problems:
    raise ConfigError(f"use-case files that do not load (their DAGs are missing until fixed):\n{_problems}")
