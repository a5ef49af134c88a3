"""The simulated source a use case can generate for demos and tests (``simulation:``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from pipelines.config.types import Strict


class TargetSpec(Strict):
    """How the synthetic generator makes the label of an entity's day from that day's row.

    ``label = intercept + sum(weight * term) + noise * N(0, 1)``, where a term is a
    numeric column of the activity dataset (its value that day) or
    ``<category column>=<value>`` (1 when the row has that value, else 0).
    """

    intercept: float = Field(default=0.0, description="Constant added to every label.")
    noise: float = Field(default=1.0, ge=0, description="Standard deviation of the label's noise.")
    terms: dict[str, float] = Field(min_length=1, description="Term -> weight.")


class DriftSpec(Strict):
    """What the synthetic generator changes from ``simulation.drift_day`` on."""

    scale: dict[str, float] = Field(
        default_factory=dict, description="Numeric column -> factor its values are multiplied by (covariate shift)."
    )
    intercept: float | None = Field(default=None, description="Replaces target.intercept (null: unchanged).")
    terms: dict[str, float] | None = Field(
        default=None, description="Replaces target.terms (concept change; null: unchanged)."
    )

    @field_validator("scale")
    @classmethod
    def _positive(cls, scale: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in scale.items() if not v > 0}
        if bad:
            raise ValueError(f"scale factors must be positive, got {bad}")
        return scale


SIMULATION_DEFAULT_POPULATION = 2000


class SimulationSpec(Strict):
    """Defaults of ``mlops simulate`` / ``mlops demo``: which generator makes the source, and its parameters.

    ``generator: churn`` (the default) is the telecom world of the demo and counts
    ``customers``; ``generator: synthetic`` simulates any use case from its column
    specs, counts ``entities`` and needs a ``target`` (and a ``drift`` block for a
    ``drift_day``). The combinations are checked with the other cross-references.
    """

    generator: Literal["churn", "synthetic"] = Field(
        default="churn", description="The telecom world of the demo, or one drawn from the column specs."
    )
    start: dt.date = Field(description="First simulated day.")
    days: int = Field(default=30, ge=1, description="Days simulated.")
    customers: int | None = Field(default=None, ge=1, description="Churn generator: customers on day 0.")
    entities: int | None = Field(default=None, ge=1, description="Synthetic generator: entities, each active daily.")
    seed: int = Field(default=7, description="Seed of the generator: the same settings give the same source.")
    drift_day: int | None = Field(
        default=None, ge=0, description="Day index from which the data changes (none: no drift)."
    )
    target: TargetSpec | None = Field(default=None, description="Synthetic generator: how labels are made.")
    drift: DriftSpec | None = Field(default=None, description="Synthetic generator: what changes from drift_day.")

    @property
    def population(self) -> int:
        """Customers (churn) or entities (synthetic) to simulate."""
        return self.customers or self.entities or SIMULATION_DEFAULT_POPULATION
