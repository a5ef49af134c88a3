"""Measurement: how much a time split alone flatters a model whose labels span days (decision 0007).

    .venv/bin/python bench/held_out.py [--customers 2000] [--seed 7]

The demo's simulated telecom (``pipelines.simulation.churn``, 52 days, drift from day 31),
with the demo's kind of features computed directly in pandas (7- and 14-day means, sums and
maxima per customer, trends, latest values, one-hot plan, region and contract). XGBoost
(the demo's parameters) fitted on the customers outside a fixed 30% (``held_out`` of
``pipelines.training.dataset``), and judged:

* before the drift: fitted on days 10-20, judged on days 21-23 of the held-out customers;
* after it: fitted on days 31-33 (the retrain's), judged on day 34 of all customers (a time
  split alone: the fitted customers' labels of day 34 share their churn with days 31-33),
  on day 34 of the held-out customers, and on days 35-44 of the held-out customers (what
  serving would see).

Prints one AUC per line. Not timed: a check of the figures decision 0007 quotes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAYS, DRIFT = 52, 31
AGGREGATES = [
    ("data_usage_gb", "mean"),
    ("call_minutes", "mean"),
    ("monthly_charges", "mean"),
    ("payment_delay_days", "mean"),
    ("payment_delay_days", "max"),
    ("support_tickets", "sum"),
]


def features(customers: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    from pipelines.simulation import churn as sim

    world = sim.World(dt.date(2025, 1, 1), customers, seed, label_delay_days=7, drift_day=DRIFT)
    acts, labels = [], []
    for i, day in enumerate(world.simulate(DAYS)):
        acts.append(day.activity.assign(d=i))
        labels.append(day.labels)
    act = pd.concat(acts).sort_values(["customer_id", "d"])
    lab = pd.concat(labels)
    lab["d"] = (pd.to_datetime(lab["reference_date"]) - pd.Timestamp("2025-01-01")).dt.days
    by = act.groupby("customer_id")
    names = []
    for window in (7, 14):
        for col, how in AGGREGATES:
            name = f"{col}_{how}_{window}d"
            act[name] = by[col].transform(lambda s, w=window, h=how: getattr(s.rolling(w, min_periods=1), h)())
            names.append(name)
    for col in ("monthly_charges", "data_usage_gb"):
        act[f"{col}_trend"] = act[f"{col}_mean_7d"] - act[f"{col}_mean_14d"]
        names.append(f"{col}_trend")
    act["tenure_days_latest"], act["monthly_charges_latest"] = act["tenure_days"], act["monthly_charges"]
    names += ["tenure_days_latest", "monthly_charges_latest"]
    for col, values in (("plan", sim.PLANS), ("region", sim.REGIONS), ("contract", sim.CONTRACTS)):
        for value in values:
            act[f"{col}_is_{value}"] = (act[col] == value).astype(int)
            names.append(f"{col}_is_{value}")
    return lab.merge(act[["customer_id", "d", *names]], on=["customer_id", "d"]), names


def main() -> None:
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    from pipelines.training.dataset import held_out

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    frame, names = features(args.customers, args.seed)
    judged = held_out(frame["customer_id"], 0.3)
    fit_rows, judged_rows = frame[~judged], frame[judged]

    def fitted(days: range) -> xgb.XGBClassifier:
        rows = fit_rows[fit_rows["d"].isin(days)]
        return xgb.XGBClassifier(max_depth=4, n_estimators=150, learning_rate=0.1, verbosity=0).fit(
            rows[names], rows["churned"]
        )

    def auc(model: xgb.XGBClassifier, rows: pd.DataFrame) -> float:
        return float(roc_auc_score(rows["churned"], model.predict_proba(rows[names])[:, 1]))

    before, after = fitted(range(10, 21)), fitted(range(DRIFT, DRIFT + 3))
    day, later = DRIFT + 3, judged_rows["d"].between(DRIFT + 4, DRIFT + 13)
    lines = [
        ("before the drift, held-out customers, days 21-23", before, judged_rows[judged_rows["d"].between(21, 23)]),
        (f"that model after the drift, days {day + 1}-{day + 10}", before, judged_rows[later]),
        (f"retrain, day {day}, every customer (a time split alone)", after, frame[frame["d"] == day]),
        (f"retrain, day {day}, held-out customers", after, judged_rows[judged_rows["d"] == day]),
        (f"retrain, days {day + 1}-{day + 10}, held-out customers (serving)", after, judged_rows[later]),
    ]
    print(f"churned share of labelled rows: {frame['churned'].mean():.3f}")
    for text, model, rows in lines:
        print(f"{text:<62} AUC {auc(model, rows):.3f}")


if __name__ == "__main__":
    main()
