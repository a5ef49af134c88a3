"""Locks between the processes that share a state: tasks, workers, the CLI, the demo.

Two kinds, chosen by the environment:

- ``MLOPS_LOCKS_URL`` unset (the embedded default): ``flock`` on files under
  ``$MLOPS_HOME/locks``, which holds between the processes of one machine.
- ``MLOPS_LOCKS_URL`` set to a PostgreSQL URL (the server profile): PostgreSQL
  advisory locks, which hold between workers on any number of machines, whatever
  storage ``$MLOPS_HOME`` is on. Each lock is a session of its own, so a worker
  that dies (even by SIGKILL) releases its locks when the server sees the
  connection close.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines import settings

LOCKS_URL_ENV = "MLOPS_LOCKS_URL"


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an ``flock`` on ``path`` (created if needed) for the block: exclusive, or shared with other readers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def advisory_key(name: str) -> int:
    """The 64-bit signed key of a lock name (stable across processes and Python versions)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@functools.lru_cache(maxsize=4)
def _engine(url: str) -> Any:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    # No pool: a connection returned to a pool would keep any lock a failed unlock left behind.
    return sa.create_engine(url, poolclass=NullPool)


_ADVISORY = {  # shared -> (lock, unlock)
    False: ("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)"),
    True: ("SELECT pg_advisory_lock_shared(:k)", "SELECT pg_advisory_unlock_shared(:k)"),
}


@contextlib.contextmanager
def advisory_lock(url: str, name: str, shared: bool = False) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock ``name`` on its own connection for the block."""
    import sqlalchemy as sa

    key = advisory_key(name)
    lock, unlock = _ADVISORY[shared]
    with _engine(url).connect() as conn:
        conn.execute(sa.text(lock), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text(unlock), {"k": key})
            conn.commit()


def named_lock(*parts: str, shared: bool = False) -> contextlib.AbstractContextManager[None]:
    """The lock ``<parts...>``: exclusive, or ``shared`` with other shared holders."""
    url = os.environ.get(LOCKS_URL_ENV)
    if url:
        return advisory_lock(url, "mlops/" + "/".join(parts), shared=shared)
    *folders, name = parts
    return file_lock(settings.mlops_home().joinpath("locks", *folders, f"{name}.lock"), shared=shared)
