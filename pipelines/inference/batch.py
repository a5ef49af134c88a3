"""Score the entities active in an interval with a pinned model version, in chunks.

The model version is resolved once per run (:func:`pin`) and passed on, so a
promotion during a run cannot mix two models in one batch. The features of the
entities active in an interval, as of its end, are that interval's rows of the
offline data behind the feature service (every active entity has a row stamped
at the end, so Feast's point-in-time join would pick exactly these rows; a test
holds the two equal). They are read in chunks straight from the interval's
partition, with the columns the model's feature service names in the Feast
registry: Feast's own retrieval loads the whole feature source for every call,
so its memory would grow with the history, not with the chunk. Predictions replace the interval's rows in
the warehouse in one transaction and in a Parquet partition, both keyed by use
case and as-of time; entities without features are counted, logged and listed
in a side file. With ``inference.reasons``, each model that scores a chunk also
explains it (:mod:`pipelines.responsible.explain`: exact contributions to the
margin) and its rows carry their top reasons as JSON. Under ``engine: spark`` only the
scores come from elsewhere (``spark_udf`` on the executors, :func:`scored_chunks`): the
checks, reasons, canary split and writes are these, on the chunks Spark returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.config import UseCase
from pipelines.errors import BadInput
from pipelines.features.definitions import feature_service_name
from pipelines.inference import rows
from pipelines.inference.inputs import feature_partition, scored_chunks
from pipelines.inference.reasons import reasons_of
from pipelines.inference.rows import DATASETS, PREDICTIONS_ZONE
from pipelines.intervals import parse_interval
from pipelines.stores import mlflow_store, partitions, warehouse

if TYPE_CHECKING:
    from pipelines.engines.spark import SparkTarget

log = logging.getLogger(__name__)


class NoChampion(BadInput):
    """Nothing to score with yet."""


class ModelUnavailable(BadInput):
    """The pinned version's artefact is missing or does not load."""


class SignatureMismatch(BadInput):
    """The features do not match what the model was trained on."""


@dataclass(frozen=True)
class PinnedModel:
    name: str
    alias: str
    version: str
    training_run_id: str
    feature_service: str
    threshold: float | None

    @property
    def uri(self) -> str:
        return mlflow_store.version_uri(self.name, self.version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pin(usecase: UseCase, alias: str = mlflow_store.CHAMPION) -> PinnedModel | None:
    """The version holding ``alias`` now, checked to load; None for an absent challenger.

    Raises:
        NoChampion: no version holds ``champion``.
        ModelUnavailable: the version's artefact is missing or broken.
    """
    client = mlflow_store.configure()
    name = mlflow_store.model_name(usecase)
    version = mlflow_store.alias_version(client, name, alias)
    if version is None:
        if alias == mlflow_store.CHAMPION:
            raise NoChampion(f"no champion for '{name}': run {usecase.dag_id('train')} first")
        return None
    mv = client.get_model_version(name, version)
    try:
        mlflow_store.load_model(mlflow_store.version_uri(name, version))
    except Exception as exc:
        raise ModelUnavailable(
            f"{alias} {name} v{version} cannot be loaded (artefact {mv.source}): {type(exc).__name__}: "
            f"{str(exc)[:300]}. Roll back with {usecase.dag_id('rollback')} or train again"
        ) from None
    run = client.get_run(mv.run_id)
    return PinnedModel(
        name=name,
        alias=alias,
        version=str(version),
        training_run_id=mv.run_id,
        feature_service=run.data.tags.get("feature_service", ""),
        threshold=mlflow_store.decision_threshold(mv),
    )


def pin_pair(usecase: UseCase) -> tuple[PinnedModel, PinnedModel | None]:
    """The champion and the challenger, pinned for one run (of inference or of the monitor).

    The challenger is best effort: one that cannot be pinned is logged and left out
    (None), and never blocks what the champion does.

    Raises:
        NoChampion, ModelUnavailable: the champion cannot be pinned.
    """
    champion = pin(usecase)
    assert champion is not None
    try:
        challenger = pin(usecase, mlflow_store.CHALLENGER)
    except BadInput as exc:
        log.warning("no challenger this run (shadow scores and comparisons are best effort): %s", exc)
        challenger = None
    return champion, challenger


def pin_models(usecase: UseCase) -> dict[str, dict[str, Any] | None]:
    """The champion to score with and the challenger to shadow-score (:func:`pin_pair`), as mappings;
    under ``rollout.mode: canary`` with a canary running, the canary in the challenger's place (it
    serves its share and shadow-scores the rest) and its split (``canary``: rollout id, fraction).

    Raises:
        NoChampion, ModelUnavailable: the champion cannot be pinned.
    """
    from pipelines.promotion import canary

    champion, challenger = pin_pair(usecase)
    split = None
    running = canary.running(mlflow_store.configure(), usecase) if usecase.rollout.mode == "canary" else None
    if running is not None and running.version != champion.version:
        try:
            pinned = pin(usecase, canary.CANARY)
        except BadInput as exc:  # the champion serves every entity meanwhile
            log.warning("the canary v%s cannot serve this run: %s", running.version, exc)
            pinned = None
        if pinned is not None and pinned.version == running.version:
            challenger = pinned
            split = {"version": running.version, "rollout_id": running.rollout_id, "fraction": running.fraction}
    return {
        "champion": champion.to_dict(),
        "challenger": challenger.to_dict() if challenger else None,
        "canary": split,
    }


def check_signature(model: Any, frame: pd.DataFrame) -> list[str]:
    """The model's input columns, after checking ``frame`` has each of them with a numeric type.

    Raises:
        SignatureMismatch: names every missing and every mistyped column.
    """
    schema = model.metadata.get_input_schema()
    if schema is None:
        raise SignatureMismatch("the model has no input signature: cannot check its features")
    names = [c.name for c in schema.inputs]
    missing = [n for n in names if n not in frame.columns]
    mistyped = [
        f"{n} ({frame[n].dtype})"
        for n in names
        if n in frame.columns and not (pd.api.types.is_numeric_dtype(frame[n]) or frame[n].isna().all())
    ]
    if missing or mistyped:
        raise SignatureMismatch(
            "features do not match the model's signature: "
            + "; ".join(
                part
                for part in (
                    f"missing {missing}" if missing else "",
                    f"not numeric: {mistyped}" if mistyped else "",
                )
                if part
            )
        )
    return names


@dataclass
class ScoreOutcome:
    usecase: str
    interval: str
    model_version: str
    scored: int
    skipped: int
    shadow_version: str | None
    shadow_scored: int
    canary_version: str | None
    canary_served: int  # of ``scored``: rows the canary served
    seconds: float
    scoring_seconds: float
    explain_seconds: float  # computing the top reasons (0 when inference.reasons is 0)
    skipped_file: str | None

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def score_interval(
    usecase: UseCase,
    champion: PinnedModel,
    start: dt.datetime,
    end: dt.datetime,
    warehouse_url: str,
    airflow_run_id: str,
    challenger: PinnedModel | None = None,
    chunk_rows: int | None = None,
    canary: dict[str, Any] | None = None,
    spark: SparkTarget | None = None,
) -> ScoreOutcome:
    """Score the entities active in ``[start, end)`` as of ``end`` with the pinned versions.

    Writes ``predictions`` (and ``shadow_predictions`` when a distinct challenger is
    given) for the interval in one transaction, and the Parquet partition(s) after it.
    With ``inference.reasons``, every row carries the top reasons of its score (column
    ``reasons``: JSON, null when the model cannot be explained).
    With ``canary`` (the challenger is then the canary: :func:`pin_models`), the canary
    serves the entities of its split and the champion the others; each shadow-scores
    the entities the other serves. Under ``engine: spark`` the scores come from Spark (on ``spark``;
    :func:`scored_chunks`) and everything else is done here, the same way.
    """
    from pipelines.promotion.rollout import canary_mask

    t0 = time.perf_counter()
    mlflow_store.configure()  # this task may run in its own process: point MLflow at the project's store
    chunk_rows = chunk_rows or (usecase.inference.chunk_rows if usecase.inference else 100_000)
    reasons = usecase.inference.reasons if usecase.inference else 0
    explainers: dict[str, Any] = {}  # kind: (fitted, features), or None when it cannot be explained
    entities = partitions.read_info(feature_partition(usecase, start, end)).rows
    key = partitions.partition_key(start, end)
    models = {"champion": mlflow_store.load_model(champion.uri)}
    pinned = {"champion": champion}
    if challenger is not None and challenger.version != champion.version:
        try:
            models["shadow"] = mlflow_store.load_model(challenger.uri)
            pinned["shadow"] = challenger
        except Exception as exc:  # shadow scoring is best effort: it never blocks the champion's scores
            log.warning("challenger v%s does not load (%s): no shadow scores this run", challenger.version, exc)
    files = {
        kind: partitions.ChunkedPartition(
            partitions.partition_path(PREDICTIONS_ZONE, usecase.name, DATASETS[kind], key), rows.empty_predictions()
        )
        for kind in models
    }
    tables = {"champion": warehouse.PREDICTIONS, "shadow": warehouse.SHADOW}
    service = champion.feature_service or feature_service_name(usecase)
    skipped: list = []
    scoring = explaining = 0.0
    served_by_canary = 0
    log.info(
        "scoring %d %s entities active in %s with %s v%s%s, %d at a time",
        entities, usecase.name, key, champion.name, champion.version,
        f" (shadow: v{challenger.version})" if "shadow" in models else "", chunk_rows,
    )  # fmt: skip
    try:
        # Both tables' rows of the interval are replaced: a rerun without a distinct challenger leaves none.
        with warehouse.interval_writer(warehouse_url, usecase.name, end, list(tables.values())) as write:
            done = 0
            uris = {kind: pinned[kind].uri for kind in models}
            for chunk in scored_chunks(usecase, models, uris, service, start, end, chunk_rows, spark):
                frame = chunk.features
                scoring += chunk.seconds
                names = [c for c in frame.columns if c != usecase.entity.name]
                found = frame[names].notna().any(axis=1).to_numpy()  # a row without any value is not scored
                skipped += frame.loc[~found, usecase.entity.name].tolist()
                frame = frame[found]
                scored = {}
                for kind, model in list(models.items()):
                    try:
                        columns = check_signature(model, frame)
                    except SignatureMismatch as exc:
                        if kind == "champion":
                            raise
                        log.warning("challenger does not fit these features (%s): no shadow scores this run", exc)
                        del models[kind], pinned[kind]
                        files.pop(kind).discard()
                        continue
                    matrix = frame[columns].astype(np.float32)
                    t = time.perf_counter()
                    if chunk.scores is not None:  # scored by the engine
                        scores = chunk.scores[kind]
                    else:
                        scores = np.asarray(model.predict(matrix)).reshape(len(matrix), -1)[:, 0] if len(matrix) else []
                    scoring += time.perf_counter() - t
                    why = None
                    # Only when asked, and only for models that serve (a challenger's shadow scores serve
                    # nobody): exact explanations cost more than scores (docs/benchmarks.md).
                    if reasons and len(matrix) and (kind == "champion" or canary):
                        t = time.perf_counter()
                        why = reasons_of(explainers, kind, model, matrix, frame, columns, reasons)
                        explaining += time.perf_counter() - t
                    stage = rows.CHAMPION if kind == "champion" else rows.CANARY if canary else rows.CHALLENGER
                    scored[kind] = rows.predictions(
                        usecase, pinned[kind], stage, frame, scores, start, end, airflow_run_id, why
                    )
                if canary and "shadow" in scored:  # the same entities every day of the rollout
                    mask = canary_mask(frame[usecase.entity.name], canary["rollout_id"], canary["fraction"])
                    scored = rows.serving_split(scored["champion"], scored["shadow"], mask)
                    served_by_canary += int(mask.sum())
                for kind, chunk in scored.items():
                    write(tables[kind], chunk)
                    files[kind].add(chunk)
                done += len(found)
                log.info("scored %d of %d entities", done, entities)
        for kind, file in files.items():
            file.publish(rows.info(usecase, kind, start, end, file))
        if "shadow" not in files:  # as in the warehouse: no shadow scores of this interval
            partitions.partition_path(PREDICTIONS_ZONE, usecase.name, DATASETS["shadow"], key).unlink(missing_ok=True)
    except BaseException:
        for file in files.values():
            file.discard()
        raise
    skipped_file = rows.write_skipped(usecase, key, skipped)
    if reasons:
        log.info("top %d reasons of %s's scores: %.2f s of explanations (%.2f s of scoring)", reasons, key,
                 explaining, scoring)  # fmt: skip
    if skipped:
        log.warning("%d of %d entities had no feature values and were not scored: %s", len(skipped), entities,
                    skipped_file)  # fmt: skip
    outcome = ScoreOutcome(
        usecase=usecase.name,
        interval=key,
        model_version=champion.version,
        scored=files["champion"].rows,
        skipped=len(skipped),
        shadow_version=pinned["shadow"].version if "shadow" in pinned else None,
        shadow_scored=files["shadow"].rows if "shadow" in files else 0,
        canary_version=pinned["shadow"].version if canary and served_by_canary else None,
        canary_served=served_by_canary,
        seconds=time.perf_counter() - t0,
        scoring_seconds=scoring,
        explain_seconds=explaining,
        skipped_file=str(skipped_file) if skipped_file else None,
    )
    if not entities:
        log.info("no %s entities were active in %s: zero predictions written", usecase.name, key)
    return outcome


def score_intervals(
    usecase: UseCase,
    models: dict[str, Any],
    intervals: list[list[str]],
    warehouse_url: str,
    run_id: str,
    spark: SparkTarget | None = None,
) -> list[dict[str, Any]]:
    """Score each interval (pairs of ISO datetimes) with the models of :func:`pin_models`, in order
    (on ``spark`` under ``engine: spark``)."""
    champion = PinnedModel(**models["champion"])
    challenger = PinnedModel(**models["challenger"]) if models.get("challenger") else None
    return [
        score_interval(
            usecase, champion, start, end, warehouse_url, run_id, challenger, canary=models.get("canary"), spark=spark
        ).summary()
        for start, end in map(parse_interval, intervals)
    ]


def latest_predictions(usecase: UseCase, warehouse_url: str) -> dict | None:
    """The newest predictions in the warehouse (for ``mlops status``)."""
    return warehouse.latest(warehouse_url, warehouse.PREDICTIONS, usecase.name)
