"""Which folder a state's stored paths name: the marker ``$MLOPS_HOME/.home``.

Some stores keep absolute paths (MLflow's artefact locations, Feast's file
sources, XComs of partition paths). A state folder that was copied or moved
still names the old folder in them, so a run on the copy would read and write
the original. ``mlops init`` records the folder; every task and ``mlops``
command refuses to run where the recorded folder is not the one in use, until
``mlops relocate`` has rewritten the stored paths (:mod:`mlops.relocate`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pipelines import settings
from pipelines.errors import CorruptState

MARKER = ".home"


class StateMoved(CorruptState):
    """The state folder was copied or moved since its stored paths were written."""


def marker_path(home: Path | None = None) -> Path:
    return (home or settings.mlops_home()) / MARKER


def recorded_home(home: Path | None = None) -> Path | None:
    """The folder the state's stored paths name, None for a state without a marker (new, or older than it)."""
    try:
        text = marker_path(home).read_text().strip()
    except FileNotFoundError:
        return None
    return Path(text) if text else None


def record_home(home: Path | None = None) -> None:
    """Record ``home`` (default: the state in use) as the folder its stored paths name."""
    home = (home or settings.mlops_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    tmp = marker_path(home).with_suffix(".tmp")
    tmp.write_text(f"{home}\n")
    tmp.replace(marker_path(home))
    _checked.cache_clear()


def check_not_moved(home: Path | None = None) -> None:
    """Refuse a state whose stored paths name another folder (it was copied or moved).

    Raises:
        StateMoved: naming both folders and the command that fixes it.
    """
    _checked((home or settings.mlops_home()).resolve())


@functools.lru_cache(maxsize=8)
def _checked(home: Path) -> None:
    recorded = recorded_home(home)
    if recorded is not None and recorded != home:
        raise StateMoved(
            f"the state folder {home} was copied or moved from {recorded}: its stores still name "
            f"{recorded}, so a run here would read and write that folder. Run `mlops relocate` "
            f"(MLOPS_HOME={home}) to rewrite them, then run again"
        )
