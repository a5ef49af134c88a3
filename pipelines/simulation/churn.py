"""A simulated telecom operator: daily customer activity and delayed churn labels.

The world is a pure function of its parameters (:class:`World`): day ``d`` of a
world always holds the same rows, so a simulation can be extended day by day and
a day already written is never written twice. Customers are simulated as
vectors, one day at a time, so memory grows with the number of customers, not
with the number of rows.

From ``drift_day`` on, two things change at once:

* covariate shift: a price rise on the basic and standard plans raises
  ``monthly_charges`` and customers cut their data usage;
* concept change: churn stops being driven by dissatisfaction (support tickets)
  and payment trouble and becomes driven by price per unit of usage and by
  region, with monthly contracts no longer the riskier ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

PLANS = np.array(["basic", "standard", "premium"])
PLAN_PRICE = np.array([25.0, 45.0, 80.0])
REGIONS = np.array(["north", "south", "east", "west"])
CONTRACTS = np.array(["monthly", "annual"])
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class World:
    """The parameters that fully determine a simulated source."""

    start: dt.date
    customers: int
    seed: int
    label_delay_days: int
    drift_day: int | None = None

    def fingerprint(self) -> str:
        """A short hash that names this world in the source's bookkeeping table."""
        payload = json.dumps(asdict(self), default=str, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def population(self) -> int:
        return self.customers

    def simulate(self, days: int) -> Iterator[SimulatedDay]:
        """Days ``0 .. days-1`` of this world."""
        return simulate(self, days)


@dataclass
class SimulatedDay:
    day: dt.date
    activity: pd.DataFrame
    labels: pd.DataFrame

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """Dataset name (as in configs/churn.yaml) -> rows written on that day."""
        return {"activity": self.activity, "labels": self.labels}


class _Population:
    """Per-customer state, grown as new customers sign up."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.n = 0
        self.capacity = 0
        self._arrays: dict[str, np.ndarray] = {}
        self.add(rng, n, signup_days=-rng.integers(0, 1500, size=n))

    def add(self, rng: np.random.Generator, n: int, signup_days: np.ndarray) -> None:
        fresh = {
            "plan": rng.choice(3, size=n, p=[0.5, 0.35, 0.15]),
            "region": rng.choice(4, size=n, p=[0.3, 0.25, 0.25, 0.2]),
            "contract": rng.choice(2, size=n, p=[0.6, 0.4]),
            "signup_day": signup_days.astype(np.int64),
            "usage": rng.lognormal(mean=-0.7, sigma=0.6, size=n),  # GB per day
            "calls": rng.lognormal(mean=2.3, sigma=0.5, size=n),  # minutes per day
            "dissatisfaction": rng.normal(size=n),
            "payment_risk": rng.normal(size=n),
            "price_sensitivity": rng.normal(size=n),
            "churn_day": np.full(n, np.iinfo(np.int64).max, dtype=np.int64),
        }
        if self.n + n > self.capacity:
            self.capacity = max(2 * self.capacity, self.n + n, 1024)
            for key, values in fresh.items():
                grown = np.empty(self.capacity, dtype=values.dtype)
                if key in self._arrays:
                    grown[: self.n] = self._arrays[key][: self.n]
                self._arrays[key] = grown
        for key, values in fresh.items():
            self._arrays[key][self.n : self.n + n] = values
        self.n += n

    def __getattr__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key][: self.n]
        except KeyError:
            raise AttributeError(key) from None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate(world: World, days: int) -> Iterator[SimulatedDay]:
    """Yield days ``0 .. days-1`` of ``world``, each with its activity and arriving labels."""
    rng = np.random.default_rng(world.seed)
    pop = _Population(rng, world.customers)
    for d in range(days):
        day_rng = np.random.default_rng([world.seed, d])
        if d > 0:
            new = int(day_rng.poisson(world.customers * 0.003))
            pop.add(day_rng, new, signup_days=np.full(new, d))
        drifted = world.drift_day is not None and d >= world.drift_day
        active = np.flatnonzero((pop.signup_day <= d) & (pop.churn_day >= d))
        activity = _activity(world, pop, active, d, drifted, day_rng)
        _decide_churn(pop, active, activity, d, drifted, day_rng)
        yield SimulatedDay(
            day=world.start + dt.timedelta(days=d),
            activity=activity,
            labels=_labels(world, pop, d, day_rng),
        )


def _activity(
    world: World, pop: _Population, idx: np.ndarray, d: int, drifted: bool, rng: np.random.Generator
) -> pd.DataFrame:
    n = idx.size
    plan = pop.plan[idx]
    usage = pop.usage[idx] * np.exp(rng.normal(0, 0.3, n)) * (0.8 if drifted else 1.0)
    price = PLAN_PRICE[plan] * np.where(drifted & (plan < 2), 1.3, 1.0)
    charges = np.clip(price + 6.0 * usage + rng.normal(0, 2.0, n), 0, None)
    day_start = pd.Timestamp(world.start) + pd.Timedelta(days=d)
    return pd.DataFrame(
        {
            "customer_id": idx.astype(np.int64) + 1,
            "event_timestamp": day_start + pd.to_timedelta(rng.integers(0, SECONDS_PER_DAY, n), unit="s"),
            "plan": PLANS[plan],
            "region": REGIONS[pop.region[idx]],
            "contract": CONTRACTS[pop.contract[idx]],
            "tenure_days": (d - pop.signup_day[idx]).astype(np.int64),
            "monthly_charges": np.round(charges, 2),
            "data_usage_gb": np.round(usage, 3),
            "call_minutes": np.round(pop.calls[idx] * np.exp(rng.normal(0, 0.3, n)), 1),
            "support_tickets": rng.poisson(0.08 * np.exp(0.9 * pop.dissatisfaction[idx])).astype(np.int64),
            "payment_delay_days": rng.poisson(0.4 * np.exp(1.2 * pop.payment_risk[idx])).astype(np.int64),
        }
    )


def _decide_churn(
    pop: _Population,
    idx: np.ndarray,
    activity: pd.DataFrame,
    d: int,
    drifted: bool,
    rng: np.random.Generator,
) -> None:
    """Mark which active customers leave at the end of the day (their last active day)."""
    monthly = pop.contract[idx] == 0
    tenure_years = activity["tenure_days"].to_numpy() / 365.0
    if not drifted:
        logit = (
            -7.5
            + 1.6 * pop.dissatisfaction[idx]
            + 0.5 * activity["support_tickets"].to_numpy()
            + 1.6 * pop.payment_risk[idx]
            + 1.2 * monthly
            - 0.6 * np.log1p(tenure_years)
        )
    else:
        usage = activity["data_usage_gb"].to_numpy()
        price_per_gb = activity["monthly_charges"].to_numpy() / (usage + 0.5)
        logit = (
            -7.0
            + 3.0 * (np.log(price_per_gb) - 4.0)
            + 0.3 * pop.price_sensitivity[idx]
            + 2.0 * (pop.region[idx] == 1)
            - 0.7 * monthly
            + 0.4 * np.log1p(tenure_years)
        )
    leaves = rng.random(idx.size) < _sigmoid(logit)
    pop.churn_day[idx[leaves]] = d


def _labels(world: World, pop: _Population, d: int, rng: np.random.Generator) -> pd.DataFrame:
    """Labels arriving on day ``d``: churn within the horizon after reference day ``d - delay``."""
    ref = d - world.label_delay_days
    idx = np.flatnonzero((pop.signup_day <= ref) & (pop.churn_day >= ref)) if ref >= 0 else np.array([], np.int64)
    horizon = max(world.label_delay_days, 1)
    churned = (pop.churn_day[idx] < ref + horizon).astype(np.int64)
    day_start = pd.Timestamp(world.start) + pd.Timedelta(days=d)
    return pd.DataFrame(
        {
            "customer_id": idx.astype(np.int64) + 1,
            "reference_date": np.full(idx.size, np.datetime64(world.start + dt.timedelta(days=ref), "ns")),
            "label_timestamp": day_start + pd.to_timedelta(rng.integers(0, SECONDS_PER_DAY, idx.size), unit="s"),
            "churned": churned,
        }
    )
