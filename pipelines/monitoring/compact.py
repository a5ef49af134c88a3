"""An Evidently report page without the bytes it repeats: the same page, drawn from the same numbers.

Evidently (0.7) writes a page's data as two JavaScript variables: the dashboard (its widgets)
and a map of the figures that the widgets' details open (``additional_graphs_<id>``). Of a
night's drift report over 29 features (2.0 MB) most is repetition:

* every figure twice: Evidently strips a widget's ``additionalGraphs`` from the dashboard,
  since the page reads them from the map, but only from top-level widgets, and the drift
  table sits inside a group (0.95 MB);
* Plotly's default template (7.5 KB of colour scales and axis styles) in every figure's
  layout, 60 times over (0.45 MB);
* the spaces after every ``,`` and ``:`` of the JSON (0.05 MB).

:func:`compact_page` keeps each figure once, in the map; writes each distinct template once,
with a few lines of script that give every figure its copy back before the page is drawn;
and writes the JSON without spaces (a demo night's drift report: 2.04 MB -> 0.57 MB). Every
number and figure stays as Evidently made it. A page whose data is not in that form (another
Evidently template) is kept as it is.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

# The data block of Evidently's page template (evidently/legacy/utils/dashboard.py): one line a
# variable, since json.dumps writes no raw newline.
_DATA = re.compile(
    r"^(?P<indent>[ \t]*)var (?P<id>metric_\w+) = (?P<dashboard>\{.*\});\n"
    r"[ \t]*var additional_graphs_(?P=id) = (?P<graphs>\{.*\});$",
    re.MULTILINE,
)
_TEMPLATE_KEY = "mlops:template:{}"  # what a figure's layout.template says until the script restores it

# Runs after the data, before Evidently's library draws the page: each figure gets its own
# copy of its template (Plotly may keep and mutate what it is given).
_RESTORE = """(function (templates, roots) {
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== "object") return;
    const layout = node.layout;
    if (layout && typeof layout.template === "string" && layout.template in templates) {
      layout.template = structuredClone(templates[layout.template]);
    }
    Object.values(node).forEach(visit);
  };
  roots.forEach(visit);
})(%s, [%s, additional_graphs_%s]);"""


def compact_page(html: str) -> str:
    """``html`` (an Evidently report page) with each figure once and each Plotly template once.

    The page draws the same: the figures the widgets open come from the map, as before, and
    every figure's layout gets its template back (a copy) before Evidently's library reads it.
    """
    found = list(_DATA.finditer(html))
    if len(found) != 1:
        log.warning("Evidently's report template changed: the page's data is kept as it is (%d blocks)", len(found))
        return html
    match = found[0]
    dashboard, graphs = json.loads(match["dashboard"]), json.loads(match["graphs"])
    for widget in dashboard.get("widgets", []):
        _drop_mapped_graphs(widget, set(graphs))
    templates: dict[str, str] = {}
    _share_templates(dashboard, templates)
    _share_templates(graphs, templates)
    indent, dashboard_id = match["indent"], match["id"]
    lines = [
        f"{indent}var {dashboard_id} = {_dumps(dashboard)};",
        f"{indent}var additional_graphs_{dashboard_id} = {_dumps(graphs)};",
    ]
    if templates:
        shared = "{" + ",".join(f"{_dumps(key)}:{text}" for text, key in templates.items()) + "}"
        restore = _RESTORE % (shared, dashboard_id, dashboard_id)
        lines.append(indent + restore.replace("\n", "\n" + indent))
    return html[: match.start()] + "\n".join(lines) + html[match.end() :]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _drop_mapped_graphs(widget: dict[str, Any], mapped: set[str]) -> None:
    """Remove from ``widget`` and the widgets inside it the figures the page reads from the map."""
    kept = [graph for graph in widget.get("additionalGraphs") or [] if graph.get("id") not in mapped]
    if "additionalGraphs" in widget:
        widget["additionalGraphs"] = kept
    for child in widget.get("widgets") or []:
        _drop_mapped_graphs(child, mapped)
    for tab in widget.get("tabs") or []:
        if isinstance(tab.get("widget"), dict):
            _drop_mapped_graphs(tab["widget"], mapped)


def _share_templates(node: Any, templates: dict[str, str]) -> None:
    """Replace each figure's ``layout.template`` in ``node`` by its key in ``templates`` (a template's
    JSON -> its key), adding the templates not seen before."""
    if isinstance(node, list):
        for item in node:
            _share_templates(item, templates)
        return
    if not isinstance(node, dict):
        return
    layout = node.get("layout")
    if isinstance(layout, dict) and isinstance(layout.get("template"), dict):
        text = _dumps(layout["template"])
        layout["template"] = templates.setdefault(text, _TEMPLATE_KEY.format(len(templates)))
    for value in node.values():
        _share_templates(value, templates)
