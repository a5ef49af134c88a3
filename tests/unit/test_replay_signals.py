"""A replay stops on SIGTERM even when the task that is running swallows it and replaces the handler.

Airflow's in-process task runner does both (it installs its own SIGTERM handler
for every task and catches BaseException); the stop must still reach the loop.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from mlops.replay_signals import Interrupted, stop_on_signals, stop_repeats


def _task_like_airflows() -> None:
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        time.sleep(0.1)
    except BaseException:
        pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_signal_reaches_the_loop_through_a_task_that_swallows_it(signum):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stop_on_signals():
        with pytest.raises(Interrupted) as stop:
            for i in range(100):  # bounded: about 20 s at most
                _task_like_airflows()
                if i == 2:
                    os.kill(os.getpid(), signum)
                time.sleep(0.1)  # the run loop between tasks
        stop_repeats()
    assert stop.value.signum == signum and i < 60
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers restored
