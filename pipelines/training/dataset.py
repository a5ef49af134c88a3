"""Training sets for a window of labelled days, and their split by time.

The window is given by its end (a run's ``data_interval_end``, never "now"): a
label about reference day D is used when it was known before the end, and the
features joined to it are those as of the end of D (Feast's point-in-time join).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import TrainingSpec, UseCase
from pipelines.days import as_utc, day_start, has_time_of_day
from pipelines.errors import BadInput
from pipelines.features.definitions import feature_service_name
from pipelines.features.engineering import feature_columns
from pipelines.features.serving import EVENT_TIMESTAMP, build_training_set, label_entity_rows, reference_day
from pipelines.stores import feature_store, partitions
from pipelines.stores.partitions import CURATED, QUARANTINE, PartitionInfo

log = logging.getLogger(__name__)

TRAINING_ZONE = "training"
REFERENCE_DAY = "reference_day"  # the labelled day a row is about (its split key)


class TrainingDataError(BadInput):
    """The window cannot give a model: too few labelled rows, one class only, no days to split."""


@dataclass(frozen=True)
class TrainingData:
    """A training set on disk and in memory, with what lineage needs."""

    usecase: str
    frame: pd.DataFrame  # entity, event_timestamp, reference_day, label, features (float32)
    features: list[str]
    label: str
    window_start: dt.datetime
    window_end: dt.datetime
    feature_service: str
    path: Path
    content_hash: str
    label_rows: int  # labelled rows known in the window
    missing_rows: int  # of those, rows without features (reported, not trained on)
    quarantined: list[str] = field(default_factory=list)  # label partitions left out


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    def days(self, part: str) -> list[str]:
        frame = getattr(self, part)
        return sorted(str(d.date()) for d in frame[REFERENCE_DAY].unique())

    def summary(self) -> dict[str, dict]:
        return {
            part: {"rows": len(getattr(self, part)), "days": self.days(part)}
            for part in ("train", "validation", "holdout")
        }


def spec_of(usecase: UseCase) -> TrainingSpec:
    if usecase.training is None:
        raise ValueError(f"use case '{usecase.name}' has no training section")
    return usecase.training


def with_split(usecase: UseCase, validation_days: int | None, holdout_days: int | None) -> UseCase:
    """``usecase`` with another time split for one run (a drift retrain's); None keeps the config's."""
    spec = spec_of(usecase)
    changes = {k: v for k, v in (("validation_days", validation_days), ("holdout_days", holdout_days)) if v is not None}
    if not changes:
        return usecase
    return usecase.model_copy(update={"training": spec.model_copy(update=changes)})


def model_features(usecase: UseCase) -> list[str]:
    """The columns a model of this use case takes, in the feature service's order."""
    assert usecase.features is not None
    return list(feature_columns(usecase.features, usecase.source.datasets[usecase.features.dataset]))


def load_labels(usecase: UseCase, start: dt.datetime, end: dt.datetime) -> tuple[pd.DataFrame, list[str]]:
    """Curated labels about reference days in ``[start, end)`` that were known before ``end``.

    Returns the labels and the keys of quarantined label partitions in that range
    (their labels are left out, and the caller says so).
    """
    label = usecase.label
    ds = usecase.source.datasets[label.dataset]
    infos = partitions.list_infos(CURATED, usecase.name, label.dataset)
    # A label arrives after its reference day: partitions from the window's start to its end hold them.
    needed = [path for path, info in infos if info.interval[1] > start and info.interval[0] < end]
    quarantined = [
        info.key
        for _, info in partitions.list_infos(QUARANTINE, usecase.name, label.dataset)
        if info.interval[1] > start and info.interval[0] < end
    ]
    if not needed:
        return pd.DataFrame(columns=[c.name for c in ds.columns]), quarantined
    labels = pd.concat([partitions.read_partition(p) for p in needed], ignore_index=True)
    reference = day_start(labels[label.reference_time], usecase.schedule.timezone)
    known = as_utc(labels[ds.event_time])
    keep = (reference >= pd.Timestamp(start)) & (known < pd.Timestamp(end))
    return labels[keep.to_numpy()].reset_index(drop=True), quarantined


def first_trainable_day(usecase: UseCase) -> dt.datetime:
    """The first reference day training may use: ``training.warmup_days`` after ``schedule.start_date``
    (earlier days' rolling features saw less history than their windows claim)."""
    start = dt.datetime.combine(usecase.schedule.start_date, dt.time(0), tzinfo=dt.UTC)
    return start + dt.timedelta(days=spec_of(usecase).warmup_days)


def build_training_data(
    usecase: UseCase, end: dt.datetime, window_days: int | None = None, store=None, via: str = "partitions"
) -> TrainingData:
    """The training set of the ``window_days`` reference days before ``end``, written atomically
    to ``training/<use case>/<window>.parquet`` (the same window gives the same file and hash).
    ``via`` is the point-in-time join's path (:func:`~pipelines.features.serving.build_training_set`).

    Raises:
        TrainingDataError: fewer labelled rows with features than ``training.min_rows``.
    """
    spec = spec_of(usecase)
    days = window_days or spec.window_days
    start = max(end - dt.timedelta(days=days), first_trainable_day(usecase))
    labels, quarantined = load_labels(usecase, start, end)
    if len(labels) and has_time_of_day(labels[usecase.label.reference_time], usecase.schedule.timezone):
        log.info(
            "label.reference_time '%s' carries times of day: each label counts for its day in %s",
            usecase.label.reference_time,
            usecase.schedule.timezone,
        )
    if quarantined:
        log.warning("label partitions %s are quarantined: their labels are left out", quarantined)
    rows = label_entity_rows(usecase, labels, known_at=end) if len(labels) else pd.DataFrame()
    log.info("training window [%s, %s): %d labelled rows known by its end", start, end, len(rows))
    if len(rows) < spec.min_rows:
        raise TrainingDataError(
            f"training window [{start:%Y-%m-%d}, {end:%Y-%m-%d}) of {usecase.name} has {len(rows)} labelled rows "
            f"whose label delay ({usecase.label.delay_days} days) has passed; training needs at least "
            f"{spec.min_rows} (training.min_rows): ingest more days or widen the window"
        )
    joined = build_training_set(store or feature_store.get_store(), usecase, rows, via=via)  # type: ignore[arg-type]
    features = model_features(usecase)
    frame, missing_rows = joined.frame, len(joined.missing)
    del joined  # one copy of the window at a time (each step below makes the next)
    if len(frame) < spec.min_rows:
        raise TrainingDataError(
            f"training window [{start:%Y-%m-%d}, {end:%Y-%m-%d}) of {usecase.name}: only {len(frame)} of "
            f"{len(rows)} labelled rows have features within the TTL; training needs at least {spec.min_rows}"
        )
    frame = frame.assign(**{REFERENCE_DAY: reference_day(usecase, frame[EVENT_TIMESTAMP])})
    frame = frame[[usecase.entity.name, EVENT_TIMESTAMP, REFERENCE_DAY, usecase.label.column, *features]]
    frame = frame.astype({name: np.float32 for name in features}).sort_values(
        [EVENT_TIMESTAMP, usecase.entity.name], ignore_index=True
    )
    info = PartitionInfo.describe(frame, usecase.name, "training", start, end, status="training")
    path = partitions.partition_path(TRAINING_ZONE, usecase.name, "training", info.key)
    old = partitions.read_info(path)
    if old is None or old.content_hash != info.content_hash:
        partitions.write_partition(path, frame, info)
    log.info(
        "training set %s: %d rows, %d without features, hash %s",
        path,
        len(frame),
        missing_rows,
        info.content_hash[:12],
    )
    return _training_data(usecase, frame, path, info, len(rows), missing_rows, quarantined)


def read_training_data(usecase: UseCase, path: Path) -> TrainingData:
    """A training set written by :func:`build_training_data`, read back (another task's output)."""
    info = partitions.read_info(path)
    if info is None:
        raise FileNotFoundError(f"no training set at {path}")
    return _training_data(usecase, partitions.read_partition(path), path, info, info.rows, 0, [])


def _training_data(
    usecase: UseCase,
    frame: pd.DataFrame,
    path: Path,
    info: PartitionInfo,
    label_rows: int,
    missing_rows: int,
    quarantined: list[str],
) -> TrainingData:
    start, end = info.interval
    return TrainingData(
        usecase=usecase.name,
        frame=frame,
        features=model_features(usecase),
        label=usecase.label.column,
        window_start=start,
        window_end=end,
        feature_service=feature_service_name(usecase),
        path=path,
        content_hash=info.content_hash,
        label_rows=label_rows,
        missing_rows=missing_rows,
        quarantined=quarantined,
    )


def split_by_time(frame: pd.DataFrame, spec: TrainingSpec, entity: str) -> Split:
    """Train on the oldest days, validate on the next ``validation_days``, hold out the newest
    ``holdout_days``. No random split: rows of one day are never on both sides. With
    ``held_out_entities``, fit rows come from the other entities only and validation and holdout
    rows from the held-out ones (:func:`held_out`): no entity is on both sides either.

    Raises:
        TrainingDataError: too few distinct labelled days for the three parts.
    """
    days = sorted(frame[REFERENCE_DAY].unique())
    needed = spec.holdout_days + spec.validation_days + 1
    if len(days) < needed:
        raise TrainingDataError(
            f"the window has {len(days)} labelled days; a time split needs at least {needed} "
            f"({spec.holdout_days} holdout + {spec.validation_days} validation + 1 training day)"
        )
    holdout_from = days[-spec.holdout_days]
    validation_from = days[-(spec.holdout_days + spec.validation_days)]
    day = frame[REFERENCE_DAY]
    if spec.held_out_entities:
        judged = held_out(frame[entity], spec.held_out_entities)
        fitted = ~judged
    else:  # a time split alone: every entity on both sides
        judged = fitted = np.ones(len(frame), bool)
    return Split(
        train=frame[(day < validation_from) & fitted].reset_index(drop=True),
        validation=frame[(day >= validation_from) & (day < holdout_from) & judged].reset_index(drop=True),
        holdout=frame[(day >= holdout_from) & judged].reset_index(drop=True),
    )


HELD_OUT_KEY = "held-out"  # the hash key of the entities no model is fitted on (the same in every run)


def held_out(entities: pd.Series, share: float) -> np.ndarray:
    """True for the entities kept out of every fit: a hash of the entity id below ``share``."""
    from pipelines.hashsplit import below

    return below(entities, HELD_OUT_KEY, share)


def check_labels(split: Split, label: str, task: str) -> None:
    """A classifier needs both classes in what it is trained and judged on.

    Raises:
        TrainingDataError: names the part and the only class it has.
    """
    if task != "binary":
        return
    for part in ("train", "validation", "holdout"):
        classes = sorted(getattr(split, part)[label].unique().tolist())
        if len(classes) < 2:
            raise TrainingDataError(
                f"the {part} days {split.days(part)} have only label {label}={classes}: a classifier needs both "
                "classes; widen the window"
            )


def check_split(split: Split, usecase: UseCase) -> None:
    """The holdout holds at least ``training.promotion.min_holdout_rows`` rows, or training stops here.

    The gate holds every model to that size, the first one too; failing before any
    model is fitted says why, instead of a rejection that names only the symptom.

    Raises:
        TrainingDataError: names the holdout days, their rows, the label column they are counted by
            and what to change.
    """
    spec = spec_of(usecase)
    needed = spec.promotion.min_holdout_rows
    rows = len(split.holdout)
    if rows >= needed:
        return
    days = split.days("holdout")
    per_day = rows / max(len(days), 1)
    share = spec.held_out_entities
    whose = f"of the {share:.0%} of entities never fitted on (training.held_out_entities) " if share else ""
    raise TrainingDataError(
        f"the holdout of {usecase.name} (the {len(days)} newest labelled days, {days[0]}..{days[-1]}) has {rows} "
        f"rows; training.promotion.min_holdout_rows asks for {needed}. Rows are counted by the day of "
        f"'{usecase.label.reference_time}' (label.reference_time) in {usecase.schedule.timezone}, and these days "
        f"hold {per_day:.0f} labelled rows {whose}a day: raise training.holdout_days"
        + (" or training.held_out_entities" if share else "")
        + ", lower training.promotion.min_holdout_rows, or check that the source has the labels of these days"
    )
