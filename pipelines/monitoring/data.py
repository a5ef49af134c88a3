"""What the drift monitor compares: the champion's reference window, the current days, matured labels.

* Reference: the champion's training set (recorded at its promotion, with its hash),
  features and the champion's scores on them.
* Current: the feature partitions of the last ``current_days`` days up to the night's
  end, scored by the same pinned champion (so both score columns come from one model).
* Matured: predictions that were served for days whose labels have arrived by the
  night's end, joined with those labels, per model version (and the challenger's
  shadow scores of the same days).

Windows larger than ``monitoring.sample_rows`` are sampled with a fixed seed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import UseCase
from pipelines.days import day_start as start_of_day
from pipelines.errors import BadInput
from pipelines.inference.batch import DATASETS, PREDICTIONS_ZONE, check_signature
from pipelines.inference.inputs import feature_partition
from pipelines.promotion.decisions import decisions_dir
from pipelines.stores import partitions
from pipelines.training.dataset import load_labels, model_features, read_training_data

log = logging.getLogger(__name__)

SCORE = "score"
TARGET = "target"
SAMPLE_SEED = 0


class NoReference(BadInput):
    """The champion's training window cannot be found (no decision record or training set)."""


class EmptyWindow(BadInput):
    """No entity was active in the current window: nothing to compare."""


@dataclass(frozen=True)
class Reference:
    version: str
    frame: pd.DataFrame  # model features (+ score once scored)
    rows: int  # before sampling
    window_start: str
    window_end: str
    data_hash: str
    training_set: str
    training_run_id: str
    holdout_metric: float | None
    primary_metric: str


def decision_record(usecase: UseCase, version: str) -> dict[str, Any]:
    """The promotion record of ``version`` (its training set, hash, holdout metrics)."""
    path = decisions_dir(usecase) / f"v{version}.json"
    if not path.exists():
        raise NoReference(f"{usecase.name} v{version} has no decision record ({path}): not trained by this pipeline?")
    return json.loads(path.read_text())


def sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with a fixed seed (the frame itself when smaller)."""
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=SAMPLE_SEED).reset_index(drop=True)


def reference(usecase: UseCase, version: str, sample_rows: int) -> Reference:
    """The champion's training window: features of its training set, sampled.

    Raises:
        NoReference: no decision record or its training set is gone.
    """
    record = decision_record(usecase, version)
    path = Path(record.get("training_set") or "")
    if not path.is_file():
        raise NoReference(
            f"the training set of {usecase.name} v{version} ({path}) is gone: the monitor has no reference; "
            f"train again ({usecase.dag_id('train')})"
        )
    data = read_training_data(usecase, path)
    frame = data.frame
    primary = record["primary_metric"]
    return Reference(
        version=version,
        frame=sample(frame[data.features], sample_rows),
        rows=len(frame),
        window_start=data.window_start.isoformat(),
        window_end=data.window_end.isoformat(),
        data_hash=data.content_hash,
        training_set=str(path),
        training_run_id=record.get("training_run_id", ""),
        holdout_metric=record["challenger"]["metrics"].get(primary),
        primary_metric=primary,
    )


def days_of(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The whole days ``[start, end)`` covers, as intervals."""
    out = []
    day = start
    while day < end:
        out.append((day, day + dt.timedelta(days=1)))
        day += dt.timedelta(days=1)
    return out


def current(usecase: UseCase, start: dt.datetime, end: dt.datetime, sample_rows: int) -> tuple[pd.DataFrame, int]:
    """Features of the entities active in the days of ``[start, end)``, sampled, and the row count before it.

    Raises:
        EmptyWindow: no feature rows at all (missing days are logged and left out).
    """
    features = model_features(usecase)
    frames = []
    for day_start, day_end in days_of(start, end):
        try:
            path = feature_partition(usecase, day_start, day_end)
        except BadInput as exc:
            log.warning("current window: %s", exc)
            continue
        frames.append(partitions.read_partition(path, columns=[usecase.entity.name, *features]))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=features)
    if frame.empty:
        raise EmptyWindow(
            f"no {usecase.name} entity has features in [{start:%Y-%m-%d}, {end:%Y-%m-%d}): nothing to compare "
            f"(run {usecase.dag_id('features')} for these days)"
        )
    return sample(frame, sample_rows), len(frame)


def score(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the model's score as column ``score``."""
    columns = check_signature(model, frame)
    scores = np.asarray(model.predict(frame[columns].astype(np.float32))).reshape(len(frame), -1)[:, 0]
    return frame.assign(**{SCORE: scores.astype(float)})


def matured(
    usecase: UseCase, night_end: dt.datetime, days: int, kind: str = "champion"
) -> tuple[pd.DataFrame, dt.datetime, dt.datetime]:
    """Served scores of the newest ``days`` days whose labels have all arrived by ``night_end``,
    joined with their labels: columns entity_id, day, score, model_version, target.

    ``kind`` is ``champion`` (table ``predictions``) or ``shadow`` (the challenger's).
    Returns the rows and the window of reference days ``[start, end)`` they cover.
    """
    delay = dt.timedelta(days=usecase.label.delay_days)
    end = night_end - delay  # a label about day D is known from D + delay on
    start = end - dt.timedelta(days=days)
    labels, _ = load_labels(usecase, start, night_end)
    frames = []
    for day_start, day_end in days_of(start, end):
        key = partitions.partition_key(day_start, day_end)
        path = partitions.partition_path(PREDICTIONS_ZONE, usecase.name, DATASETS[kind], key)
        if path.exists():
            scores = partitions.read_partition(path, columns=["entity_id", "score", "model_version"])
            frames.append(scores.assign(day=pd.Timestamp(day_start)))
    empty = pd.DataFrame(columns=["entity_id", "day", SCORE, "model_version", TARGET])
    if not frames or labels.empty:
        return empty, start, end
    served = pd.concat(frames, ignore_index=True)
    label = usecase.label
    known = pd.DataFrame(
        {
            "entity_id": labels[usecase.entity.name].astype(str),
            # The day a label is about, in the use case's timezone: its reference time may carry a time of day.
            "day": start_of_day(labels[label.reference_time], usecase.schedule.timezone),
            TARGET: labels[label.column].astype(float),
        }
    ).drop_duplicates(["entity_id", "day"], keep="last")
    served["entity_id"] = served["entity_id"].astype(str)
    served["day"] = start_of_day(served["day"], usecase.schedule.timezone)
    return served.merge(known, on=["entity_id", "day"], how="inner"), start, end
