"""The responsible gate's settings: fairness guardrails, behavioural tests of a trained model, and
explanations (``training.fairness``, ``training.behaviour``, ``inference.reasons``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pipelines.config.data import feature_names
from pipelines.config.types import Strict

# Group metrics by task: Fairlearn's between-group differences (binary, at the model's threshold), and
# the spread of the groups' mean absolute errors relative to the overall one (regression, unitless).
FAIRNESS_METRICS = {
    "binary": ("demographic_parity_difference", "equalized_odds_difference"),
    "regression": ("mae_gap",),
}


class GuardrailSpec(Strict):
    """One group metric's guardrail: an absolute limit, and how much a challenger may widen it."""

    limit: float | None = Field(
        default=None, ge=0, description="No model whose gap exceeds this is promoted, not even the first (null: none)."
    )
    tolerance: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="A challenger's gap may exceed the champion's by at most this much (same units as the gap; "
        "null: not compared with the champion's).",
    )

    @model_validator(mode="after")
    def _something(self) -> GuardrailSpec:
        if self.limit is None and self.tolerance is None:
            raise ValueError("give a limit, a tolerance or both: a guardrail with neither guards nothing")
        return self


class FairnessSpec(Strict):
    """Group metrics of every candidate by sensitive attribute, as guardrails of the gate."""

    sensitive: list[str] = Field(
        min_length=1, description="Sensitive attributes: features.one_hot columns whose groups are compared."
    )
    metrics: dict[str, GuardrailSpec] = Field(
        min_length=1,
        description="Guardrail per group metric. Binary: demographic_parity_difference (largest gap in the "
        "share of positive decisions), equalized_odds_difference (largest gap in true or false positive "
        "rate), both from Fairlearn at the model's threshold. Regression: mae_gap (largest minus smallest "
        "group MAE, divided by the overall MAE).",
    )
    min_group_rows: int = Field(default=50, ge=1, description="Smaller groups are reported as such, not judged.")
    min_group_minority: int = Field(
        default=10, ge=1, description="Binary: groups with fewer rows of the rarer class are reported, not judged."
    )


class PerturbationTest(Strict):
    """A change to some features of every holdout row, and what it may do to the scores."""

    name: str = Field(description="Names the test in the gate's checks and the decision record.")
    features: list[str] = Field(min_length=1, description="Model features changed together (the rest held).")
    add: float | None = Field(default=None, description="Added to each of the features.")
    scale: float | None = Field(default=None, gt=0, description="Each of the features multiplied by this.")
    tolerance: float = Field(
        default=0.01, ge=0, description="Score change (probability, or the label's units) that counts as none."
    )
    max_share: float = Field(
        default=0.0, ge=0, le=1, description="Share of rows that may break the expectation before the test fails."
    )

    @model_validator(mode="after")
    def _one_change(self) -> PerturbationTest:
        if (self.add is None) == (self.scale is None):
            raise ValueError(f"test '{self.name}': give exactly one of add or scale")
        return self


class DirectionalTest(PerturbationTest):
    """The scores must move one way (or not at all) when the features grow."""

    direction: Literal["increasing", "decreasing"] = Field(
        description="increasing: no row's score may fall by more than the tolerance; decreasing: rise."
    )


class SliceTest(Strict):
    """Minimum quality on a named slice of the holdout."""

    name: str = Field(description="Names the slice in the gate's checks.")
    where: dict[str, tuple[float | None, float | None]] = Field(
        min_length=1, description="Model feature -> [min, max] (inclusive; null: open): rows in every range."
    )
    floor: float = Field(description="Minimum of the primary metric on the slice.")
    min_rows: int = Field(default=50, ge=1, description="A smaller slice is reported as such, not judged.")


class BehaviourSpec(Strict):
    """Behavioural tests every candidate passes in the gate (a failed test rejects it, with its name)."""

    invariance: list[PerturbationTest] = Field(
        default_factory=list, description="Changes that must leave the scores (nearly) unchanged."
    )
    directional: list[DirectionalTest] = Field(
        default_factory=list, description="Changes the scores must follow in one direction."
    )
    slices: list[SliceTest] = Field(default_factory=list, description="Named slices with a quality floor.")


def responsible_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Names in the fairness and behaviour sections that do not exist (or do not fit the task)."""
    training = raw.get("training") if isinstance(raw.get("training"), dict) else {}
    features = raw.get("features") if isinstance(raw.get("features"), dict) else {}
    problems: list[tuple[str, str]] = []
    one_hot = features.get("one_hot") or []
    fairness = training.get("fairness")
    if isinstance(fairness, dict):
        for i, attribute in enumerate(fairness.get("sensitive") or []):
            if attribute not in one_hot:
                problems.append(
                    (
                        f"training.fairness.sensitive.{i}",
                        f"unknown sensitive attribute '{attribute}': not one of features.one_hot {one_hot}",
                    )
                )
        allowed = FAIRNESS_METRICS.get(str(raw.get("task")), ())
        for metric in fairness.get("metrics") or {}:
            if allowed and metric not in allowed:
                problems.append(
                    (f"training.fairness.metrics.{metric}", f"not a {raw.get('task')} group metric ({list(allowed)})")
                )
    behaviour = training.get("behaviour")
    names = _model_features(raw)
    if isinstance(behaviour, dict) and names is not None:
        for kind in ("invariance", "directional", "slices"):
            for i, test in enumerate(behaviour.get(kind) or []):
                if not isinstance(test, dict):
                    continue
                wanted = test.get("features") if kind != "slices" else list(test.get("where") or {})
                for feature in wanted or []:
                    if feature not in names:
                        problems.append(
                            (
                                f"training.behaviour.{kind}.{i}",
                                f"test '{test.get('name')}' names '{feature}', which is not a model feature",
                            )
                        )
                if raw.get("task") == "binary" and kind != "slices" and (test.get("tolerance") or 0) > 1:
                    problems.append(
                        (f"training.behaviour.{kind}.{i}.tolerance", "a score change above 1 is no test for scores")
                    )
    return problems


def _model_features(raw: dict[str, Any]) -> set[str] | None:
    """The model's feature columns from the raw file (None when its sections are too broken to tell)."""
    try:
        features = raw["features"]
        dataset = raw["source"]["datasets"][features["dataset"]]
        values = {c["name"]: c.get("values") or [] for c in dataset["columns"]}
        return set(
            feature_names(
                list(features["windows_days"]),
                {k: list(v) for k, v in (features.get("aggregates") or {}).items()},
                list(features.get("trends") or []),
                list(features.get("latest") or []),
                {c: list(values.get(c, [])) for c in features.get("one_hot") or []},
            )
        )
    except (KeyError, TypeError, AttributeError):
        return None
