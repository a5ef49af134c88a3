"""Feast, imported without typeguard's run-time instrumentation.

Feast decorates its core classes (``FeatureView``, ``Entity``, ``Field``, the data sources, ...)
with typeguard's ``@typechecked``, which re-parses and recompiles each class's source when the
module is imported and then checks argument types on every call. That is most of what
``import feast`` costs: 5 to 6 s of CPU in every process that imports it (each Celery task of
the features, training and inference DAGs, each test worker, each ``mlops`` command), against
about 2 s without. typeguard itself treats the decorator as a development aid: under ``python
-O`` it does nothing. :func:`load` imports Feast with the decorator as that no-op and restores
typeguard at once, so nothing else in the process changes; the objects Feast builds, and what it
does with them, are the same (the project's configs are validated before they reach Feast).

The project's code calls :func:`load` before each of its Feast imports (``feast_sqlite.py`` is the
exception: Feast itself imports it, after ``feast``); a process that imported Feast some other way
first, as some tests do, keeps the instrumented classes (correct, only slower).
``bench/imports.py`` measures the difference; ``tests/integration/test_feast_import.py`` holds
the seam (typeguard's ``typechecked`` name, Feast's instrumented classes).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


def _unchecked(target: Any = None, **_options: Any) -> Any:
    """``typeguard.typechecked`` as it is under ``python -O``: the target, unchanged."""
    return target if target is not None else _unchecked


def load() -> ModuleType:
    """The ``feast`` package, imported once per process without typeguard's instrumentation."""
    if "feast" in sys.modules:
        return sys.modules["feast"]
    import typeguard

    original = typeguard.typechecked
    typeguard.typechecked = _unchecked
    try:
        import feast
    finally:
        typeguard.typechecked = original
    return feast
