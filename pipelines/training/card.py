"""Model cards: generated for every registered version from what MLflow and the gate recorded."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from pipelines import settings
from pipelines.config import UseCase
from pipelines.stores import mlflow_store

log = logging.getLogger(__name__)

_SHOWN = {
    "binary": ["roc_auc", "pr_auc", "log_loss", "brier", "f1", "positive_rate", "rows"],
    "regression": ["rmse", "mae", "r2", "rows"],
}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def render_markdown(usecase: UseCase, version: Any, run: Any, record: dict[str, Any], split: dict) -> str:
    """The model card of ``version`` (an MLflow ModelVersion) trained in ``run``, judged in ``record``."""
    name = record["model"]
    params, tags = run.data.params, run.data.tags
    shown = _SHOWN[usecase.task]
    mine = record["challenger"]["metrics"]
    theirs = (record.get("champion") or {}).get("metrics") or {}
    champion = record.get("compared_with")
    champion_segments = (record.get("champion") or {}).get("segments") or {}
    lines = [
        f"# Model card: {name} v{version.version}",
        "",
        f"*Generated from the MLflow run `{run.info.run_id}` and the promotion decision; do not edit by hand.*",
        "",
        "## Intended use",
        "",
        f"{usecase.description or usecase.name} Task: {usecase.task}; {_what_is_scored(usecase)} per "
        f"`{usecase.entity.name}` "
        f"and day, from the features as of the end of that day. Owner: {usecase.owner}. Scored daily by "
        f"`{usecase.dag_id('batch_inference')}` while it holds the alias `champion`.",
        "",
        "## Data",
        "",
        f"- Training window: {tags.get('training_window', 'n/a').replace('/', ' to ')} (reference days whose "
        f"labels, {usecase.label.delay_days} days late, were known by its end)",
        f"- Feature service: `{tags.get('feature_service', 'n/a')}`; training set hash `{tags.get('data_hash', '')}`",
        *[
            f"- {part.capitalize()}: {split[part]['rows']:,} rows"
            + (f", days {', '.join(split[part]['days'])}" if part != "train" else f", {len(split[part]['days'])} days")
            for part in ("train", "validation", "holdout")
            if part in split
        ],
        f"- Candidate: `{tags.get('candidate', 'n/a')}` ({tags.get('kind', 'n/a')}), seed {params.get('seed', 'n/a')}, "
        f"code `{tags.get('git_commit', 'unknown')}`",
        "",
        "## Features",
        "",
        ", ".join(f"`{f}`" for f in _features(run)),
        "",
        "## Metrics on the holdout",
        "",
        f"| metric | v{version.version} | champion{f' v{champion}' if champion else ''} |",
        "|---|---|---|",
        *[f"| {m} | {_fmt(mine.get(m))} | {_fmt(theirs.get(m)) if theirs else '-'} |" for m in shown],
        "",
        "### Per segment",
        "",
        f"| segment | rows | {record['primary_metric']} | champion |",
        "|---|---|---|---|",
        *[
            f"| {segment} | {_fmt(values.get('rows'))} | {_fmt(values.get(record['primary_metric']))} | "
            f"{_fmt(champion_segments.get(segment, {}).get(record['primary_metric']))} |"
            for segment, values in sorted(record["challenger"]["segments"].items())
        ],
        "",
        *_fairness(record),
        *_explanations(record),
        "## Promotion decision",
        "",
        f"**{record['decision'].upper()}**{' (forced)' if record.get('forced') else ''}: {record['reason']}",
        "",
        *[f"- {_verdict(c)}: {c['name']}: {c['detail']}" for c in record["checks"]],
        "",
        "## Known limitations",
        "",
        *_limitations(usecase, record, split),
    ]
    return "\n".join(lines) + "\n"


def _verdict(check: dict[str, Any]) -> str:
    if not check.get("judged", True):
        return "not judged"
    return "pass" if check["passed"] else "FAIL"


def _fairness(record: dict[str, Any]) -> list[str]:
    """Group gaps per sensitive attribute, this version's beside the champion's (none: no section)."""
    mine = record["challenger"].get("fairness") or {}
    if not mine:
        return []
    theirs = (record.get("champion") or {}).get("fairness") or {}
    lines = [
        "## Fairness",
        "",
        "Gaps between the groups of each sensitive attribute on the holdout (decisions at the model's threshold; "
        "Fairlearn). Groups too small to judge are named and left out of the gaps.",
        "",
        "| attribute | metric | this version | champion | groups judged | too small |",
        "|---|---|---|---|---|---|",
    ]
    for attribute, figures in mine.items():
        for metric, value in figures["gaps"].items():
            before = (theirs.get(attribute) or {}).get("gaps", {}).get(metric)
            judged, small = (", ".join(figures[k][metric]) or "none" for k in ("judged", "too_small"))
            lines.append(
                f"| {attribute} | {metric} | {_fmt(value)} | {_fmt(before) if theirs else '-'} | {judged} | {small} |"
            )
    return [*lines, ""]


def _explanations(record: dict[str, Any]) -> list[str]:
    """The global explanation: mean absolute contribution to the margin, largest first."""
    from pipelines.responsible.explain import ranked

    importance = record["challenger"].get("importance") or {}
    if not importance:
        return []
    return [
        "## Explanations",
        "",
        "What moves this version's scores on the holdout: each feature's mean absolute contribution to the "
        "margin (exact: XGBoost's TreeSHAP, or coefficient times centred feature for linear models).",
        "",
        "| feature | mean \\|contribution\\| |",
        "|---|---|",
        *[f"| `{feature}` | {value:.4f} |" for feature, value in ranked(importance)],
        "",
    ]


def _what_is_scored(usecase: UseCase) -> str:
    """What a model's ``score`` column holds, in words."""
    if usecase.task == "regression":
        return f"one score (the predicted `{usecase.label.column}`)"
    return f"one score (the probability that `{usecase.label.column}` is 1)"


def _features(run: Any) -> list[str]:
    try:
        return mlflow_store.signature_columns(f"runs:/{run.info.run_id}/model")
    except Exception:  # no signature: say so rather than fail the card
        return ["(not recorded)"]


def _limitations(usecase: UseCase, record: dict[str, Any], split: dict) -> list[str]:
    out = [
        f"- Judged on {record['holdout_rows']:,} holdout rows of {len(record.get('holdout_days') or [])} days; "
        "metrics on fewer days are noisy.",
        f"- Labels arrive {usecase.label.delay_days} days late: live performance of recent days is unknown "
        "until then; the drift monitor watches inputs and scores meanwhile.",
    ]
    from pipelines.promotion.policy import judged
    from pipelines.training.dataset import spec_of

    spec = spec_of(usecase)
    small = [
        s for s, v in record["challenger"]["segments"].items() if not judged(v, spec.promotion, spec.primary_metric)
    ]
    if small:
        out.append(f"- Segments too small (or with too few of one class) to judge: {', '.join(sorted(small))}.")
    if usecase.simulation is not None:
        out.append("- Trained on simulated data when run by the demo: not for real decisions.")
    return out


def render_html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}"
        "code{background:#f4f4f4;padding:0 .2rem}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def cards_dir(usecase: UseCase) -> Path:
    return settings.reports_dir() / usecase.name / "model_cards"


def publish(usecase: UseCase, version: str, record: dict[str, Any], split: dict) -> Path:
    """Write the card of ``version`` (Markdown and HTML), log both to its run, link them from its description."""
    client = mlflow_store.configure()
    name = record["model"]
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    markdown = render_markdown(usecase, mv, run, record, split)
    folder = cards_dir(usecase)
    folder.mkdir(parents=True, exist_ok=True)
    md_path, html_path = folder / f"v{version}.md", folder / f"v{version}.html"
    md_path.write_text(markdown)
    html_path.write_text(render_html(markdown, f"{name} v{version}"))
    for path in (md_path, html_path):
        client.log_artifact(mv.run_id, str(path), "model_card")
    artifact = f"{run.info.artifact_uri}/model_card/{html_path.name}"
    client.update_model_version(
        name,
        version,
        description=f"{record['decision'].upper()}: {record['reason'][:500]}\n\nModel card: {artifact} "
        f"(also {html_path}); Markdown beside it. Training run: {mv.run_id}.",
    )
    log.info("model card of %s v%s: %s", name, version, html_path)
    return html_path
