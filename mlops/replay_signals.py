"""Stopping a replay on SIGINT or SIGTERM wherever the main thread is, even inside a task run by ``dag.test``."""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a replay. A BaseException, so that no ``except Exception`` stops it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_caught = threading.Event()  # set by the replay loop once Interrupted reached it


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in the main thread, wherever it is.

    Two things stand in the way, and both are Airflow's to do: the in-process task
    runner installs its own SIGTERM handler for every task (and keeps it), and a
    task that is running catches :class:`Interrupted` like any error (Airflow marks
    it failed or up for retry) while ``dag.test`` carries on with the run. So the
    signal is also read from a wakeup file descriptor (written for any Python-level
    handler, Airflow's included) by a watcher thread, which interrupts the main
    thread every half second until the replay loop has caught it (:func:`stop_repeats`).
    """
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        raise Interrupted(received[0] if received else signum)

    def watch(fd: int) -> None:
        while chunk := os.read(fd, 64):
            wanted = [n for n in chunk if n in (signal.SIGINT, signal.SIGTERM)]
            if not wanted or _caught.is_set():
                continue
            received.append(received[0] if received else wanted[0])
            while not _caught.wait(0.5):
                _thread.interrupt_main(signal.SIGINT)  # calls on_signal in the main thread
        os.close(fd)

    _caught.clear()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=watch, args=(read_fd,), daemon=True, name="replay-signals").start()
    try:
        yield
    finally:
        stop_repeats()
        signal.set_wakeup_fd(old_fd)
        os.close(write_fd)  # the watcher's read returns nothing: it ends
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop_repeats() -> None:
    """End the repeated :class:`Interrupted` and ignore further signals while the replay cleans up."""
    while True:
        try:
            _caught.set()
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, signal.SIG_IGN)
            return
        except Interrupted:  # one more repeat arrived before the handlers were replaced
            continue
