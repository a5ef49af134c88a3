"""Whether a use case's ``simulation:`` block fits its generator and the datasets it must fill.

Works on the raw mapping of the file (no pandas, no generator imports), so the
config loader reports these problems together with the other field errors.
"""

from __future__ import annotations

from typing import Any


def simulation_problems(raw: dict[str, Any], datasets: dict[str, Any]) -> list[tuple[str, str]]:
    """Generator-specific fields, and whether the synthetic generator can fill the declared datasets."""
    simulation = raw.get("simulation")
    if not isinstance(simulation, dict):
        return []
    generator = simulation.get("generator", "churn")
    if generator == "churn":
        return [
            (f"simulation.{name}", f"only the synthetic generator uses it ({why})")
            for name, why in (
                ("entities", "the churn generator counts simulation.customers"),
                ("target", "the churn world has its own churn drivers"),
                ("drift", "the churn world has its own drift"),
            )
            if simulation.get(name) is not None
        ]
    if generator != "synthetic":
        return []  # reported as a field error
    problems = []
    if simulation.get("customers") is not None:
        problems.append(("simulation.customers", "the synthetic generator counts simulation.entities"))
    if not isinstance(simulation.get("target"), dict):
        problems.append(("simulation.target", "the synthetic generator needs a target (intercept, noise, terms)"))
    if simulation.get("drift_day") is not None and not isinstance(simulation.get("drift"), dict):
        problems.append(("simulation.drift", "the synthetic generator needs a drift block to know what changes"))
    label = raw.get("label") if isinstance(raw.get("label"), dict) else {}
    if label.get("dataset") not in datasets:
        return problems  # reported under label.dataset
    activity = [name for name in datasets if name != label["dataset"]]
    if len(activity) != 1:
        problems.append(
            (
                "simulation.generator",
                f"'synthetic' fills one activity dataset besides the label dataset '{label['dataset']}'; "
                f"source.datasets has {list(datasets)}",
            )
        )
        return problems
    entity = (raw.get("entity") or {}).get("name") if isinstance(raw.get("entity"), dict) else None
    problems += _synthetic_dataset_problems(activity[0], datasets[activity[0]], entity)
    problems += _synthetic_label_problems(label, datasets[label["dataset"]], entity)
    columns = _column_types(datasets[activity[0]])
    for block, field in (("target", "terms"), ("drift", "terms"), ("drift", "scale")):
        section = simulation.get(block)
        entries = section.get(field) if isinstance(section, dict) else None
        for term in entries if isinstance(entries, dict) else []:
            problem = _term_problem(str(term), columns, numeric_only=field == "scale")
            if problem:
                problems.append((f"simulation.{block}.{field}.{term}", f"{problem} of dataset '{activity[0]}'"))
    return problems


def _column_types(dataset: Any) -> dict[str, dict[str, Any]]:
    columns = dataset.get("columns") if isinstance(dataset, dict) else None
    return {c["name"]: c for c in columns or [] if isinstance(c, dict) and "name" in c}


def _synthetic_dataset_problems(name: str, dataset: Any, entity: str | None) -> list[tuple[str, str]]:
    """Every column of the activity dataset must be one the synthetic generator knows how to draw."""
    problems = []
    event_time = dataset.get("event_time") if isinstance(dataset, dict) else None
    for i, spec in enumerate(dataset.get("columns") or [] if isinstance(dataset, dict) else []):
        column = spec.get("name") if isinstance(spec, dict) else None
        if column is None or column in (entity, event_time):
            continue
        where = f"source.datasets.{name}.columns.{i}"
        if spec.get("type") in ("int", "float"):
            if spec.get("min") is None or spec.get("max") is None:
                problems.append((where, f"'{column}': the synthetic generator draws it between its min and max"))
        elif spec.get("type") != "category":
            problems.append((where, f"'{column}': the synthetic generator cannot draw a '{spec.get('type')}' column"))
    return problems


def _synthetic_label_problems(label: dict[str, Any], dataset: Any, entity: str | None) -> list[tuple[str, str]]:
    """The label dataset must hold exactly the entity, reference time, arrival time and a numeric label."""
    columns = _column_types(dataset)
    event_time = dataset.get("event_time") if isinstance(dataset, dict) else None
    expected = {entity, label.get("reference_time"), event_time, label.get("column")}
    problems = []
    if set(columns) != expected:
        problems.append(
            (
                f"source.datasets.{label['dataset']}.columns",
                f"the synthetic generator fills {sorted(str(c) for c in expected)}, not {sorted(columns)}",
            )
        )
    label_type = columns.get(label.get("column"), {}).get("type")
    if label_type is not None and label_type not in ("int", "float"):
        problems.append(("label.column", f"the synthetic generator makes numeric labels, not '{label_type}'"))
    return problems


def _term_problem(term: str, columns: dict[str, dict[str, Any]], numeric_only: bool) -> str | None:
    """Why ``term`` (``<numeric column>`` or ``<category column>=<value>``) names nothing, or None."""
    column, _, value = term.partition("=")
    spec = columns.get(column)
    if spec is None:
        return f"'{column}' is not a column"
    if value and not numeric_only:
        if spec.get("type") != "category":
            return f"'{column}=...' needs a category column, '{column}' has type {spec.get('type')}"
        if value not in (spec.get("values") or []):
            return f"'{value}' is not one of the values {spec.get('values')} of '{column}'"
        return None
    if spec.get("type") not in ("int", "float"):
        hint = "" if numeric_only else f" (write '{column}=<value>' for a category)"
        return f"'{column}' has type {spec.get('type')}, need a numeric column{hint}"
    return None
