"""Which drifted features moved the champion's scores most (exact contributions, :mod:`pipelines.responsible.explain`).

Each feature's mean contribution to the champion's margin (log-odds for binary
tasks, the estimate for regression) on the reference sample and on the current
days: a drifted feature's *shift* is how far it moved the mean margin
(current minus reference). A drifted feature that barely moves the scores matters
less than one that moves them a lot; the record keeps the largest movers first.

Best effort: a model that is not one of this project's (no exact contributions)
or a night without drift gives no movers, and a failure to explain is logged,
never a failed night.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import pandas as pd

from pipelines.responsible import explain
from pipelines.training import metrics

log = logging.getLogger(__name__)

TOP = 5


def score_movers(
    model: Any, reference: pd.DataFrame, current: pd.DataFrame, drifted: list[str], top: int = TOP
) -> list[dict[str, Any]]:
    """The ``top`` drifted features that moved the mean margin most, largest ``|shift|`` first:
    ``[{"feature", "shift", "reference", "current"}]`` in margin units (empty without drift or for
    a model that is not one of ours)."""
    if not drifted:
        return []
    found = explain.explainer(model)
    if found is None:
        log.info("score movers: the champion is not one of this pipeline's models; none computed")
        return []
    fitted, features = found  # the model's columns, in its order
    try:
        before = explain.explain(fitted, reference, features)
        after = explain.explain(fitted, current, features)
        moves = explain.score_shift(before, after, drifted)[:top]
    except Exception as exc:  # the drift record stands without them
        log.warning("score movers not computed (%s: %s)", type(exc).__name__, exc, exc_info=True)
        return []
    keys = ("feature", "shift", "reference", "current")
    return [metrics.json_safe({k: m[k] for k in keys}) for m in moves]


def summary(movers: list[dict[str, Any]]) -> str:
    """One line: ``f1 +0.412, f2 -0.120`` (shift of the mean margin); empty without movers."""
    return ", ".join(f"{m['feature']} {_signed(m['shift'])}" for m in movers)


def html_section(movers: list[dict[str, Any]]) -> str:
    """A short HTML table of the movers to put at the top of the drift report (empty without movers)."""
    if not movers:
        return ""
    cell = "padding:2px 12px;text-align:right"
    rows = "".join(
        f'<tr><td style="padding:2px 12px">{html.escape(str(m["feature"]))}</td>'
        f'<td style="{cell}">{_signed(m["shift"])}</td><td style="{cell}">{_number(m["reference"])}</td>'
        f'<td style="{cell}">{_number(m["current"])}</td></tr>'
        for m in movers
    )
    head = "".join(
        f'<th style="{cell}">{name}</th>'
        for name in ("shift of the mean margin", "reference mean contribution", "current mean contribution")
    )
    return (
        '<section id="score-movers" style="font-family:sans-serif;font-size:14px;margin:16px 24px">'
        "<h3>Drifted features that moved the champion's scores most</h3>"
        "<p>Each feature's mean contribution to the champion's margin (log-odds, or the estimate for a "
        "regression) on the reference sample and on the current days; shift = current &minus; reference.</p>"
        f'<table style="border-collapse:collapse"><tr><th style="padding:2px 12px;text-align:left">feature</th>'
        f"{head}</tr>{rows}</table></section>\n"
    )


def _signed(value: Any) -> str:
    return f"{value:+.4f}" if metrics.is_number(value) else "n/a"


def _number(value: Any) -> str:
    return f"{value:.4f}" if metrics.is_number(value) else "n/a"
