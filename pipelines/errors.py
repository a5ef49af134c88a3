"""Errors that retrying cannot fix: bad data or a source that no longer matches its config.

Tasks turn these into failures without retries (``NotYet``: a wait until the input is
complete); every other exception (a database that is down, a full disk) is left to
Airflow's retries.
"""

from __future__ import annotations

import datetime as dt


class BadInput(RuntimeError):
    """The input is wrong; running again on the same input would fail the same way."""


class CorruptState(BadInput):
    """A file of the project's state cannot be read (a partition, Feast's registry, MLflow's database):
    a retry would read the same bytes; the message names the file and how to rebuild it."""


class NotYet(RuntimeError):
    """The input is not complete yet and will be at ``ready_at``: wait, then run again (as a sensor would)."""

    def __init__(self, message: str, ready_at: dt.datetime):
        super().__init__(message)
        self.ready_at = ready_at
