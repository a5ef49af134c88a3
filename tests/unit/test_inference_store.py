"""The warehouse's interval replacement (SQLite and PostgreSQL), chunked partitions, the top reasons
stored beside the scores and the signature check."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pandas as pd
import pytest

from pipelines.inference.batch import SignatureMismatch, check_signature
from pipelines.inference.rows import empty_predictions
from pipelines.stores import partitions, warehouse

END = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)


def _rows(ids, version="1", score=0.5, reasons=None) -> pd.DataFrame:
    frame = empty_predictions()
    return pd.concat(
        [
            frame,
            pd.DataFrame(
                {
                    "usecase": "churn",
                    "entity_id": [str(i) for i in ids],
                    "as_of": pd.Timestamp(END),
                    "interval_start": pd.Timestamp(END - dt.timedelta(days=1)),
                    "score": score,
                    "decision": pd.array([1] * len(ids), dtype="Int64"),
                    "model_name": "churn",
                    "model_version": version,
                    "training_run_id": "run",
                    "feature_service": "churn_v1",
                    "airflow_run_id": "manual",
                    "reasons": pd.array(reasons or [None] * len(ids), dtype="string"),
                }
            ),
        ],
        ignore_index=True,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("postgres_url")


def test_replacing_an_interval_never_duplicates_and_other_intervals_stay(url):
    chunks = [_rows(range(0, 3)), _rows(range(3, 5))]
    assert warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", END, chunks) == 5
    other = _rows([9]).assign(as_of=pd.Timestamp(END + dt.timedelta(days=1)))
    warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", END + dt.timedelta(days=1), [other])
    warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", END, [_rows(range(0, 4), version="2", score=0.7)])
    rows = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", END)
    assert sorted(rows["entity_id"]) == ["0", "1", "2", "3"]
    assert set(rows["model_version"]) == {"2"} and set(rows["score"]) == {0.7}
    assert len(warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", END + dt.timedelta(days=1))) == 1
    assert warehouse.latest(url, warehouse.PREDICTIONS, "churn")["versions"] == ["1"]


def test_a_table_of_an_earlier_release_gets_the_stage_column_and_keeps_its_rows(url):
    import sqlalchemy as sa

    from pipelines.stores.source import make_engine

    engine = make_engine(url)
    metadata = sa.MetaData()
    old = warehouse.table(warehouse.PREDICTIONS, metadata)
    old._columns.remove(old.c.stage)  # the table as the release before stages made it
    old._columns.remove(old.c.reasons)
    metadata.create_all(engine)
    with engine.begin() as conn:
        record = _rows([7]).drop(columns=["stage", "reasons"]).iloc[0].to_dict()
        conn.execute(old.insert(), [{**record, "as_of": END.replace(tzinfo=None), "decision": 1,
                                     "interval_start": (END - dt.timedelta(days=1)).replace(tzinfo=None)}])  # fmt: skip
    engine.dispose()
    later = END + dt.timedelta(days=1)
    new = _rows([8]).assign(as_of=pd.Timestamp(later), stage="canary")
    warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", later, [new])
    assert warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", later)["stage"].tolist() == ["canary"]
    before = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", END)
    assert before["entity_id"].tolist() == ["7"] and before["stage"].isna().all()


def _reasons(*contributions) -> str:
    return json.dumps([{"feature": f"f{i}", "value": 1.5, "contribution": c} for i, c in enumerate(contributions)])


def test_rows_keep_their_reasons_and_a_table_without_the_column_gains_it(url):
    import sqlalchemy as sa

    from pipelines.stores.source import make_engine

    engine = make_engine(url)
    metadata = sa.MetaData()
    old = warehouse.table(warehouse.PREDICTIONS, metadata)
    old._columns.remove(old.c.reasons)  # the table as the release before reasons made it
    metadata.create_all(engine)
    with engine.begin() as conn:
        record = _rows([7]).drop(columns="reasons").iloc[0].to_dict()
        conn.execute(old.insert(), [{**record, "as_of": END.replace(tzinfo=None), "decision": 1,
                                     "interval_start": (END - dt.timedelta(days=1)).replace(tzinfo=None)}])  # fmt: skip
    engine.dispose()

    later = END + dt.timedelta(days=1)
    why = [_reasons(0.25, -0.125, 0.0625), None, _reasons(-1.0), _reasons(2.0)]
    new = _rows([1, 2, 3, 4], reasons=why).assign(as_of=pd.Timestamp(later), stage="champion")
    new["reasons"] = new["reasons"].astype(object)
    new.loc[2, "reasons"], new.loc[3, "reasons"] = pd.NA, float("nan")
    warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", later, [new])
    columns = {c["name"] for c in sa.inspect(make_engine(url)).get_columns(warehouse.PREDICTIONS)}
    assert "reasons" in columns
    got = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", later).set_index("entity_id")["reasons"]
    assert json.loads(got["1"]) == json.loads(why[0]) and [r["contribution"] for r in json.loads(got["1"])] == [
        0.25, -0.125, 0.0625
    ]  # fmt: skip
    assert got[["2", "3", "4"]].isna().all()  # None, pd.NA and NaN: NULL
    before = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", END)
    assert before["entity_id"].tolist() == ["7"] and before["reasons"].isna().all()  # the old rows keep null


def test_a_partition_keeps_the_reasons_typed_as_text_whatever_its_first_chunk_holds(home):
    path = partitions.partition_path("predictions", "churn", "scores", "2025-01-01")
    writer = partitions.ChunkedPartition(path, empty_predictions())
    writer.add(_rows([1, 2]))  # a first chunk without reasons (a model that cannot be explained)
    writer.add(_rows([3], reasons=[_reasons(0.5)]))
    info = partitions.PartitionInfo.describe(_rows([1]), "churn", "scores", END - dt.timedelta(days=1), END, "x")
    writer.publish(info)
    stored = partitions.read_partition(path).set_index("entity_id")["reasons"]
    assert stored[["1", "2"]].isna().all() and json.loads(stored["3"])[0]["contribution"] == 0.5


def test_a_failure_mid_write_leaves_the_old_rows(url):
    warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", END, [_rows(range(3))])

    def chunks():
        yield _rows(range(10, 20), version="2")
        raise RuntimeError("the scoring process died")

    with pytest.raises(RuntimeError):
        warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", END, chunks())
    rows = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", END)
    assert sorted(rows["entity_id"]) == ["0", "1", "2"] and set(rows["model_version"]) == {"1"}


def test_a_chunked_partition_equals_the_whole_frame_and_appears_only_when_published(home):
    path = partitions.partition_path("predictions", "churn", "scores", "2025-01-01")
    whole = pd.concat([_rows(range(3)), _rows(range(3, 6))], ignore_index=True)
    writer = partitions.ChunkedPartition(path, empty_predictions())
    writer.add(whole.iloc[:3])
    writer.add(whole.iloc[3:])
    assert not path.exists()
    info = partitions.PartitionInfo.describe(whole, "churn", "scores", END - dt.timedelta(days=1), END, "predictions")
    assert writer.content_hash == info.content_hash and writer.rows == 6
    writer.publish(info)
    pd.testing.assert_frame_equal(partitions.read_partition(path), whole)
    assert partitions.read_info(path).rows == 6

    broken = partitions.ChunkedPartition(path, empty_predictions())
    broken.add(_rows([7]))
    broken.discard()
    assert partitions.read_info(path).rows == 6 and not list(path.parent.glob(".*tmp*"))


def test_reasons_are_computed_per_model_and_one_that_cannot_be_explained_is_left_without(caplog):
    import numpy as np

    from pipelines.inference.reasons import reasons_of

    class Linear:  # contributions: each feature times its weight
        def contributions(self, matrix):
            return matrix * np.array([2.0, -1.0, 0.5]), np.zeros(len(matrix))

    class Broken:
        def contributions(self, matrix):
            raise TypeError("not an estimator this project explains")

    def model(fitted):
        inner = SimpleNamespace(fitted=fitted, features=["a", "b", "c"])
        return SimpleNamespace(unwrap_python_model=lambda: inner)

    frame = pd.DataFrame({"id": [1, 2], "a": [1.0, 0.0], "b": [3.0, 1.0], "c": [None, 4.0]})
    matrix = frame[["a", "b", "c"]].astype("float32")
    cache: dict = {}
    got = reasons_of(cache, "champion", model(Linear()), matrix, frame, ["a", "b", "c"], 2)
    assert [[(r["feature"], r["value"], r["contribution"]) for r in json.loads(t)] for t in got] == [
        [("b", 3.0, -3.0), ("a", 1.0, 2.0)], [("c", 4.0, 2.0), ("b", 1.0, -1.0)]
    ]  # fmt: skip
    assert reasons_of(cache, "shadow", model(Broken()), matrix, frame, ["a", "b", "c"], 2) is None
    assert reasons_of(cache, "shadow", model(Broken()), matrix, frame, ["a", "b", "c"], 2) is None
    assert cache["shadow"] is None and sum("cannot be explained" in r.message for r in caplog.records) == 1
    foreign = SimpleNamespace(unwrap_python_model=lambda: (_ for _ in ()).throw(TypeError("not pyfunc")))
    assert reasons_of(cache, "other", foreign, matrix, frame, ["a", "b", "c"], 2) is None


def test_features_that_do_not_match_the_signature_are_named():
    schema = SimpleNamespace(inputs=[SimpleNamespace(name="a"), SimpleNamespace(name="b"), SimpleNamespace(name="c")])
    model = SimpleNamespace(metadata=SimpleNamespace(get_input_schema=lambda: schema))
    assert check_signature(model, pd.DataFrame({"a": [1.0], "b": [1], "c": [None]})) == ["a", "b", "c"]
    with pytest.raises(SignatureMismatch, match=r"missing \['c'\]; not numeric: \['b \(object\)'\]"):
        check_signature(model, pd.DataFrame({"a": [1.0], "b": ["x"]}))


def test_the_bulk_path_stores_what_sqlalchemy_would_value_for_value(url, tmp_path):
    """COPY (PostgreSQL) and the driver's executemany (SQLite) bypass SQLAlchemy's per-row binding:
    the rows read back equal those of SQLAlchemy's own insert, nulls, quotes and precision included."""
    import sqlalchemy as sa

    from pipelines.stores.source import make_engine

    reasons = ['[{"feature": "a,b", "value": 1.5}]', None, 'say "no"\nthen, yes', None]
    rows = _rows(["1", 'x,"y"', "z\n", ""], score=0.0, reasons=reasons)
    rows["score"] = [0.1234567890123456789, 1e-300, -2.5, 0.0]
    rows["decision"] = pd.array([1, None, 0, None], dtype="Int64")
    rows["stage"] = [None, "champion", "canary", None]
    warehouse.replace_interval(url, warehouse.PREDICTIONS, "churn", END, [rows])
    bulk = warehouse.read_interval(url, warehouse.PREDICTIONS, "churn", END)

    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    engine = make_engine(plain)
    target = warehouse.table(warehouse.PREDICTIONS, sa.MetaData())
    target.metadata.create_all(engine)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    for record in records:
        for name in ("as_of", "interval_start"):
            record[name] = record[name].tz_convert(None).to_pydatetime()
    with engine.begin() as conn:
        conn.execute(target.insert(), records)
    engine.dispose()
    expected = warehouse.read_interval(plain, warehouse.PREDICTIONS, "churn", END)
    pd.testing.assert_frame_equal(bulk, expected)
    assert bulk["entity_id"].tolist() == ["", "1", 'x,"y"', "z\n"]
    assert bulk["reasons"].tolist() == [reasons[3], reasons[0], reasons[1], reasons[2]]
    assert bulk["score"].tolist()[1] == 0.1234567890123456789
