"""SIGKILL at seeded points of every writer of the state, then a rerun (issue 17: faults at every write).

For each writer: an uninterrupted run on a copy of its prepared state gives the
expected result and the number of calls it makes; then, at each of
``faults.POINTS`` points spread over those calls, a fresh copy is written and the
writer killed there. What the kill left must hold the writer's invariants (no
partial file a reader lists, no half-applied registry, an online store never
behind its record, an alias never without its decision record), and a rerun to
the end must leave exactly what the uninterrupted run left.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reliability import faults
from tests.reliability.faults import Writer

W = "tests.reliability.writers"


def _writer(name: str, setup: str | None, base: str = "labelled", notes: str = "", named: tuple = ()) -> Writer:
    return Writer(
        name=name,
        setup=f"{W}:{setup}" if setup else f"{W}:nothing",
        write=f"{W}:write_{name}",
        invariants=f"{W}:check_{name}",
        observe=f"{W}:seen_{name}",
        base=base,
        notes=notes,
        named=named,
    )


pytestmark = pytest.mark.xdist_group("faults")  # one worker builds the prepared states once

WRITERS = [
    _writer("curated", "setup_changed_day", notes="a corrected day replaces a curated partition"),
    _writer("quarantine", "setup_bad_day", notes="a day that fails a critical expectation"),
    _writer("features", "setup_no_features", notes="a feature partition"),
    _writer("apply", "setup_no_registry", notes="Feast apply into an empty registry"),
    _writer("materialize", "setup_materialized_before", notes="the next day into Feast's online store"),
    _writer("training_set", None, notes="a training set over the labelled window"),
    _writer(
        "promotion",
        None,
        "trained",
        notes="registration, the gate's decision record, alias move, model card",
        named=("pipelines.stores.mlflow_store.move_champion",),  # between the decision record and the alias
    ),
    _writer("predictions", None, "served", notes="a day's predictions and shadow predictions"),
    _writer(
        "drift",
        None,
        "served",
        notes="a night's drift report, history row and retrain decision",
        named=("pipelines.monitoring.report.render",),  # between the night's numbers and its HTML report
    ),
]


@pytest.fixture(scope="module")
def bases(labelled_history: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The prepared states writers start from, each built once: ``labelled`` (the labelled history),
    ``trained`` (and candidates trained on it), ``served`` (and a champion, a challenger, predictions)."""
    root = tmp_path_factory.mktemp("bases")
    labelled = root / "labelled"
    shutil.copytree(labelled_history, labelled, symlinks=True)
    (labelled / ".home").write_text(f"{labelled_history}\n")  # where its stores' paths point
    faults.run(labelled, f"{W}:relocated")
    trained = _base(labelled, root / "trained", "trained")
    return {"labelled": labelled, "trained": trained, "served": _base(trained, root / "served", "served")}


def _base(start: Path, target: Path, name: str) -> Path:
    shutil.copytree(start, target, symlinks=True)
    faults.run(target, f"{W}:relocated")
    faults.run(target, f"{W}:prepare_{name}")
    return target


@pytest.mark.parametrize("writer", WRITERS, ids=[w.name for w in WRITERS])
def test_a_kill_anywhere_in_a_write_leaves_nothing_a_rerun_cannot_finish(writer, bases, tmp_path):
    prepared = tmp_path / "prepared"
    shutil.copytree(bases[writer.base], prepared, symlinks=True)
    faults.run(prepared, f"{W}:relocated")
    faults.run(prepared, writer.setup)
    survey = faults.survey(writer, prepared, tmp_path)
    assert survey.killed >= 1, f"{writer.name}: no kill point landed inside the write ({survey})"
    assert survey.ok, f"{writer.name}: {survey}"


@pytest.mark.parametrize("name", ["curated", "features", "training_set", "predictions"])
def test_a_full_disk_during_a_write_fails_it_and_a_rerun_with_room_finishes_it(name, bases, tmp_path):
    writer = next(w for w in WRITERS if w.name == name)
    prepared = tmp_path / "prepared"
    shutil.copytree(bases[writer.base], prepared, symlinks=True)
    faults.run(prepared, f"{W}:relocated")
    faults.run(prepared, writer.setup)
    error = faults.fill_disk(writer, prepared, tmp_path)
    assert any(s in error for s in ("File too large", "No space left", "disk is full", "disk I/O error")), error[-2000:]


def test_the_warehouse_going_away_mid_write_fails_the_write_and_a_retry_duplicates_nothing(
    bases, tmp_path, postgres_url
):
    """Predictions written to a PostgreSQL warehouse whose connections are all cut just as the rows go in
    (what a server restart does to its clients): the write fails with a database error, which Airflow
    retries (not a permanent failure), and nothing of it is left; the retry writes each prediction once."""
    from pipelines.errors import BadInput

    state = tmp_path / "state"
    shutil.copytree(bases["served"], state, symlinks=True)
    faults.run(state, f"{W}:relocated")
    (state / "faults-warehouse.url").write_text(postgres_url)
    with pytest.raises(AssertionError) as failed:
        faults.run(state, f"{W}:write_predictions_while_the_warehouse_restarts")
    assert "OperationalError" in str(failed.value) and BadInput.__name__ not in str(failed.value), str(failed.value)[
        -2000:
    ]
    assert faults.run(state, f"{W}:predictions_in_warehouse").result["predictions"] == 0  # rolled back
    faults.run(state, f"{W}:write_predictions")  # the retry
    counts = faults.run(state, f"{W}:predictions_in_warehouse").result
    assert counts["predictions"] == counts["predictions_entities"] > 0
    assert counts["shadow_predictions"] == counts["shadow_predictions_entities"] == counts["predictions"]
