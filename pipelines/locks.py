"""Exclusive locks between processes of one machine (tasks, the CLI, the demo).

Files under ``$MLOPS_HOME/locks``, so they reach every process that shares the
state folder; on several machines ``$MLOPS_HOME`` must be shared storage that
supports ``flock`` for them to hold.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from pipelines import settings


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def named_lock(*parts: str) -> contextlib.AbstractContextManager[None]:
    """The lock ``$MLOPS_HOME/locks/<parts...>.lock``."""
    *folders, name = parts
    return file_lock(settings.mlops_home().joinpath("locks", *folders, f"{name}.lock"))
