"""``mlops ui`` / ``make ui``: Airflow's components on the project's state, listening on loopback only.

The four processes ``airflow standalone`` starts (API server, scheduler, DAG processor,
triggerer), started here instead so that the embedded default opens no port beyond the UI:
the API server binds 127.0.0.1, and the scheduler and triggerer start without their log
servers (``--skip-serve-logs``), which would otherwise listen on every interface (ports
8793 and 8794): on one machine the API server reads task logs from the log folder itself.
Ctrl-C (or SIGTERM) stops all four.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"


def commands(port: int) -> dict[str, list[str]]:
    """The components and their ``airflow`` command lines."""
    return {
        "api-server": ["api-server", "--host", HOST, "--port", str(port)],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }


def run(env: dict[str, str], port: int) -> int:
    """Start the components and wait; stop them all when one exits or on Ctrl-C / SIGTERM."""
    airflow = str(Path(sys.executable).parent / "airflow")
    env = env | {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    processes = {name: subprocess.Popen([airflow, *cmd], env=env) for name, cmd in commands(port).items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        while not stopping:
            ended = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
            if ended:
                print(f"mlops ui: {', '.join(f'{n} exited ({c})' for n, c in ended.items())}: stopping the rest")
                code = 1
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for p in processes.values():
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 30
    for p in processes.values():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    return code
