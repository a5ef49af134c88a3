"""What `mlops server up` says about a recorded process that no longer runs, and about a taken port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil

from mlops.server import processes


def test_a_recorded_process_says_why_it_no_longer_runs():
    me = psutil.Process()
    assert processes.Started("api", "airflow-apiserver", os.getpid(), me.create_time(), [], "").gone() is None
    reused = processes.Started("api", "airflow-apiserver", os.getpid(), me.create_time() - 5, [], "")
    assert not reused.alive() and "another process" in reused.gone()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    gone = processes.Started("api", "airflow-apiserver", ended.pid, 0.0, [], "")
    assert not gone.alive() and gone.gone() == f"pid {ended.pid}: no such process"


def test_a_stepped_wall_clock_does_not_make_a_running_process_another():
    # The same process, its wall-clock start seen 23 s later than recorded (a paused and resumed VM; found in
    # CI, where `down` then left the whole stack running): its start in ticks since boot still matches.
    me, ticks = psutil.Process(), processes.start_ticks(os.getpid())
    assert ticks is not None and ticks > 0
    shifted = processes.Started("api", "airflow-apiserver", os.getpid(), me.create_time() - 23, [], "", ticks)
    assert shifted.alive(), shifted.gone()
    reused = processes.Started("api", "airflow-apiserver", os.getpid(), me.create_time(), [], "", ticks - 100)
    assert "another process" in reused.gone() and f"ticks since boot {ticks}" in reused.gone()


def test_a_taken_port_names_the_process_that_listens_on_it():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert processes._port_in_use(port)
        assert processes._listener(port).startswith(f"by pid {os.getpid()}: ")
