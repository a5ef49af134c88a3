"""Evidently's ``DataDriftPreset`` without the figures it draws and then throws away.

The preset computes a ``ValueDrift`` metric per column, whose calculation draws two Plotly
figures for that column (the drift line and the distributions), then renders its page from
the legacy ``DataDriftTable`` instead and drops those figures. Drawing them was a third of a
night's drift report (29 features: 14 of 44 s under a profiler). :class:`FeatureDriftPreset`
asks for the same numbers through :class:`UndrawnValueDrift`, a ``ValueDrift`` whose
calculation is Evidently's own but draws nothing; the page is the preset's, unchanged.

Checked against Evidently 0.7 (``tests/integration/test_drift_report.py`` fails naming the
part that moved: the preset's metrics, ``ValueDriftCalculation._render``, the numbers).
Imported only where a report is built (Evidently is a heavy import).
"""

from __future__ import annotations

from typing import Any

from evidently.core.metric_types import SingleValueCalculation
from evidently.metrics import ValueDrift
from evidently.metrics.column_statistics import ValueDriftCalculation
from evidently.presets import DataDriftPreset


class UndrawnValueDrift(ValueDrift):
    """``ValueDrift`` (same fields, same calculation, same test) that draws no widgets."""

    class Config:
        type_alias = "mlops:metric:UndrawnValueDrift"


class _UndrawnValueDriftCalculation(ValueDriftCalculation):
    # Evidently binds a calculation to the metric named in its generic base; without this, the
    # inherited base (``SingleValueCalculation[ValueDrift]``) would rebind every ValueDrift to it.
    __orig_bases__ = (SingleValueCalculation[UndrawnValueDrift],)

    def _render(self, result: Any, options: Any, color_options: Any) -> list:
        return []


class FeatureDriftPreset(DataDriftPreset):
    """``DataDriftPreset`` whose per-column metrics are :class:`UndrawnValueDrift`."""

    def generate_metrics(self, context: Any) -> list:
        return [
            UndrawnValueDrift(**metric.dict(exclude={"type"})) if type(metric) is ValueDrift else metric
            for metric in super().generate_metrics(context)
        ]
