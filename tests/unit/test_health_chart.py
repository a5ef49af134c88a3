"""The model-health chart: one bar per day, a line per series that has values, a marker per event."""

from __future__ import annotations

from pipelines.reporting.chart import health_chart


def _day(day, rows, **values):
    base = {"day": day, "rows": rows, "quarantined": 0, "live_metric": None, "drift_share": None}
    return base | {"prediction_drift": None} | values


def test_bars_lines_and_markers_are_drawn_and_escaped():
    days = [
        _day("2025-02-01", 1900, drift_share=0.1, prediction_drift=0.02),
        _day("2025-02-02", 1950, drift_share=0.3, prediction_drift=2.5, live_metric=0.52),
        _day("2025-02-03", 0, quarantined=1),
    ]
    events = [
        {"day": "2025-02-02", "kind": "triggered", "version": None, "reason": "drift <31%> & labels"},
        {"day": "2025-02-02", "kind": "promoted", "version": "3", "reason": "beats v1"},
        {"day": "2024-12-31", "kind": "rejected", "version": "2", "reason": "before the days shown"},
    ]
    svg = health_chart(days, events)
    assert svg.startswith("<svg") and svg.count("<rect") >= 3
    assert 'class="series-drift_share"' in svg and 'class="series-prediction_drift"' in svg
    assert 'class="series-live_metric"' in svg  # one matured day is still a series
    assert "marker-triggered" in svg and "promoted v3" in svg and "marker-rejected" not in svg
    assert "&lt;31%&gt; &amp; labels" in svg and "<31%>" not in svg
    assert "2025-02-03: 0 rows, quarantined" in svg


def test_no_day_yet_is_said_in_words():
    assert health_chart([], []) == "<p>No day has been ingested yet.</p>"


def test_a_marker_near_the_right_edge_ends_its_label_at_its_line():
    """Found in the demo's page: a promotion on the last days had its label cut off by the chart's edge."""
    days = [_day(f"2025-02-{d:02d}", 1900) for d in range(1, 29)]
    events = [
        {"day": "2025-02-02", "kind": "canary", "version": "3", "reason": "passed the gate"},
        {"day": "2025-02-28", "kind": "promoted", "version": "3", "reason": "canary promoted to everyone"},
    ]
    svg = health_chart(days, events)
    early, late = svg.split('class="marker marker-')[1:3]
    assert 'text-anchor="end"' not in early.split("</g>")[0]
    assert 'text-anchor="end"' in late.split("</g>")[0] and "promoted v3" in late
