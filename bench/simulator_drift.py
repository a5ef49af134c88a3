"""How strong is the simulator's drift? AUC of a model trained before it, before and after.

    .venv/bin/python bench/simulator_drift.py [--customers 5000] [--days 75] [--drift-day 45]

Simulates in memory (no database), joins each label to the customer's activity on
its reference day, trains a gradient-boosted classifier on early pre-drift days,
and prints its AUC on a later pre-drift holdout and on post-drift days, next to a
model retrained on post-drift data. Seeds are fixed: the figures repeat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FEATURES = [
    "plan",
    "region",
    "contract",
    "tenure_days",
    "monthly_charges",
    "data_usage_gb",
    "call_minutes",
    "support_tickets",
    "payment_delay_days",
]


def main() -> None:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from pipelines.simulation.churn import World, simulate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=75)
    parser.add_argument("--drift-day", type=int, default=45)
    parser.add_argument("--label-delay", type=int, default=14)
    args = parser.parse_args()

    world = World(dt.date(2025, 1, 1), args.customers, 7, args.label_delay, args.drift_day)
    t0 = time.perf_counter()
    days = list(simulate(world, args.days))
    activity = pd.concat([d.activity for d in days])
    labels = pd.concat([d.labels for d in days])
    print(f"simulated {len(activity):,} activity rows and {len(labels):,} labels in {time.perf_counter() - t0:.1f}s")

    activity["reference_date"] = activity["event_timestamp"].dt.floor("D")
    rows = labels.merge(activity, on=["customer_id", "reference_date"])
    X = pd.get_dummies(rows[FEATURES]).astype(float)
    y = rows["churned"]
    day = (rows["reference_date"] - pd.Timestamp(world.start)).dt.days
    # Labels about days before the drift whose horizon also ends before it.
    pre = day < args.drift_day - args.label_delay
    post = day >= args.drift_day
    train = pre & (day < (args.drift_day - args.label_delay) * 2 // 3)
    holdout = pre & ~train
    post_train = post & (day < day[post].median())
    post_test = post & ~post_train

    def auc(model, mask) -> float:
        return roc_auc_score(y[mask], model.predict_proba(X[mask])[:, 1])

    before = HistGradientBoostingClassifier(random_state=0).fit(X[train], y[train])
    after = HistGradientBoostingClassifier(random_state=0).fit(X[post_train], y[post_train])
    print(f"churn rate: {y[pre].mean():.3f} before the drift, {y[post].mean():.3f} after")
    print(
        f"model trained before the drift: AUC {auc(before, holdout):.2f} before it, {auc(before, post_test):.2f} after"
    )
    print(f"model retrained after the drift: AUC {auc(after, post_test):.2f} after it")
    charges = activity.groupby(
        activity["reference_date"] >= pd.Timestamp(world.start) + pd.Timedelta(days=args.drift_day)
    )
    print("mean monthly_charges before/after:", " / ".join(f"{v:.1f}" for v in charges["monthly_charges"].mean()))


if __name__ == "__main__":
    main()
