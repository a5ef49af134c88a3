"""Benchmark: batch inference end to end against XGBoost's inplace_predict on the same matrix.

    .venv/bin/python bench/inference.py [--entities 1000000] [--large 4000000]

Writes one daily feature partition of ``entities`` customers (the 29 features of
``churn_daily``), registers an XGBoost model (fitted on random labels of 20,000
rows: the benchmark is about throughput) as the champion, then in one run:

* ours: ``score_interval`` (the scoring task): the interval's feature partition read in
  chunks with the columns of the feature service, the signature check, scoring with the
  pinned pyfunc model, the warehouse rows (one transaction) and the Parquet partition;
  explanations off (``inference.reasons: 0``), as the raw job has none, then on (the
  config's 3) for their cost;
* raw kernel: ``Booster.inplace_predict`` on the same float32 matrix, already in memory;
* raw whole job: the same work with the raw libraries in one go: read the partition
  with pyarrow, ``inplace_predict`` of the booster loaded from its own file, the same
  13 columns into the same warehouse table (delete the interval's rows, then one
  ``executemany`` in one transaction on SQLite, ``COPY`` on PostgreSQL) and a
  Parquet file.

Prints rows/s of each and the ratios (scoring step / kernel: target >= 0.5; whole job /
whole task: target >= 0.3), then the task's peak memory for ``entities`` and for
``large`` customers, each in a fresh process. ``--warehouse postgresql://...`` writes
both to that database instead of SQLite (its ``predictions`` table is replaced).
State lives in ``$MLOPS_HOME/bench_inference`` and is rebuilt on each run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from synthetic import ONE, START, write_feature_partitions  # noqa: E402


def prepare(home: Path, entities: int) -> None:
    """Feature partition, Feast registry, and a champion model in a fresh ``home``."""
    import mlflow
    import numpy as np
    import xgboost as xgb
    from mlflow.models import infer_signature

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.features.definitions import feast_objects
    from pipelines.stores import feature_store, mlflow_store
    from pipelines.training.dataset import model_features
    from pipelines.training.model import Fitted, ScoringModel

    usecase = get_usecase("churn")
    frame = write_feature_partitions(entities, 1)[0]
    feature_store.apply_if_changed(feature_store.get_store(), feast_objects(usecase))
    features = model_features(usecase)
    sample = frame[features].head(20_000).astype(np.float32)
    labels = np.random.default_rng(0).integers(0, 2, len(sample))
    booster = xgb.train({"tree_method": "hist", "max_depth": 6, "objective": "binary:logistic", "seed": 0},
                        xgb.DMatrix(sample.to_numpy(), label=labels), num_boost_round=200)  # fmt: skip
    model = ScoringModel(Fitted("xgboost", "binary", booster, best_iteration=199), features, 0.5)
    mlflow_store.configure()
    with mlflow.start_run(experiment_id=mlflow_store.experiment_id("churn")) as run:
        mlflow.set_tag("feature_service", "churn_v1")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=infer_signature(sample.head(5), model.predict(None,
            sample.head(5))), input_example=sample.head(5), pip_requirements=[]
        )  # fmt: skip
    version = mlflow_store.register_challenger(usecase, info.model_uri, run.info.run_id, {"threshold": "0.5"})
    mlflow_store.move_champion(mlflow_store.configure(), "churn", version, None)


def warehouse_url(home: Path, given: str) -> str:
    return given or f"sqlite:///{home / 'warehouse.db'}"


def score(home: Path, reasons: int, url: str) -> dict:
    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.inference.batch import pin, score_interval

    usecase = get_usecase("churn")
    usecase = usecase.model_copy(update={"inference": usecase.inference.model_copy(update={"reasons": reasons})})
    champion = pin(usecase)
    t0 = time.perf_counter()
    outcome = score_interval(usecase, champion, START, START + ONE, warehouse_url(home, url), "bench")
    return outcome.summary() | {"wall": time.perf_counter() - t0, "peak_mb": peak_mb()}


def peak_mb() -> float:
    """This process's peak resident memory since its exec (VmHWM; ru_maxrss would also count the
    parent's pages at fork time)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def raw(home: Path, url: str) -> dict:
    """The kernel (inplace_predict on the matrix in memory), then the whole job with the raw libraries."""
    import mlflow.pyfunc
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa
    import xgboost as xgb

    os.environ["MLOPS_HOME"] = str(home)
    from pipelines.config import get_usecase
    from pipelines.features.definitions import FEATURES_ZONE
    from pipelines.stores import mlflow_store, partitions, warehouse
    from pipelines.training.dataset import model_features

    usecase = get_usecase("churn")
    mlflow_store.configure()
    scoring = mlflow.pyfunc.load_model("models:/churn@champion").unwrap_python_model()
    scoring.fitted.estimator.save_model(home / "booster.ubj")
    key = partitions.partition_key(START, START + ONE)
    source = partitions.partition_path(FEATURES_ZONE, "churn", "activity", key)
    features = model_features(usecase)
    matrix = pq.read_table(source, columns=features).to_pandas().to_numpy(np.float32)
    t0 = time.perf_counter()
    scoring.fitted.estimator.inplace_predict(matrix, iteration_range=(0, 200))
    kernel = time.perf_counter() - t0
    del matrix

    engine = sa.create_engine(url or f"sqlite:///{home / 'raw_warehouse.db'}")
    target = warehouse.table("raw_predictions", sa.MetaData())  # the same columns, a table of its own
    target.metadata.create_all(engine)
    as_of, start = (START + ONE).replace(tzinfo=None), START.replace(tzinfo=None)
    t0 = time.perf_counter()
    booster = xgb.Booster(model_file=home / "booster.ubj")
    table = pq.read_table(source, columns=["customer_id", *features])
    scores = booster.inplace_predict(table.select(features).to_pandas().to_numpy(np.float32)).astype(float)
    n = len(scores)
    columns = {
        "usecase": ["churn"] * n, "entity_id": table["customer_id"].cast(pa.string()).to_pylist(),
        "as_of": [str(as_of)] * n, "interval_start": [str(start)] * n, "score": scores.tolist(),
        "decision": (scores >= 0.5).astype(int).tolist(), "model_name": ["churn"] * n, "model_version": ["1"] * n,
        "stage": ["champion"] * n, "training_run_id": ["run"] * n, "feature_service": ["churn_v1"] * n,
        "airflow_run_id": ["bench"] * n, "reasons": [None] * n,
    }  # fmt: skip
    mark = "?" if engine.name == "sqlite" else "%s"
    raw_conn = engine.raw_connection()
    cursor = raw_conn.cursor()
    cursor.execute(
        "DELETE FROM raw_predictions WHERE usecase = " + mark + " AND as_of = " + mark, ("churn", str(as_of))
    )
    names = ", ".join(columns)
    if engine.name == "postgresql":
        import pyarrow.csv

        out = pa.BufferOutputStream()
        pyarrow.csv.write_csv(pa.table(columns), out, pyarrow.csv.WriteOptions(include_header=False))
        cursor.copy_expert(
            "COPY raw_predictions (" + names + ") FROM STDIN WITH (FORMAT csv)", io.BytesIO(out.getvalue().to_pybytes())
        )
    else:
        marks = ", ".join("?" * len(columns))
        cursor.executemany(
            "INSERT INTO raw_predictions (" + names + ") VALUES (" + marks + ")", zip(*columns.values(), strict=True)
        )
    raw_conn.commit()
    raw_conn.close()
    pq.write_table(pa.table(columns), home / "raw_predictions.parquet", compression="zstd")
    whole = time.perf_counter() - t0
    engine.dispose()
    return {"seconds": kernel, "whole": whole, "rows": n}


def child(home: Path, what: str, n: int = 0, url: str = "") -> dict:
    """Each step in its own process: peaks are their own, and this one stays small."""
    command = [sys.executable, __file__, "--child", what, "--home", str(home), "--n", str(n), "--warehouse", url]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=4_000_000)
    parser.add_argument("--warehouse", default="", help="a PostgreSQL URL (default: SQLite in the bench's folder)")
    parser.add_argument("--child", choices=["prepare", "score", "explain", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "prepare":
        prepare(args.home, args.n)
        print("{}")
        return
    if args.child:
        if args.child == "raw":
            result = raw(args.home, args.warehouse)
        else:
            result = score(args.home, 3 if args.child == "explain" else 0, args.warehouse)
        print(json.dumps(result, default=str))
        return
    root = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench_inference"
    sizes = {}
    for n in (args.entities, args.large):
        t0 = time.perf_counter()
        child(root / str(n), "prepare", n)
        print(f"{n:,} customers prepared in {time.perf_counter() - t0:.0f}s", flush=True)
        sizes[n] = child(root / str(n), "score", url=args.warehouse)
        print(f"  scored in {sizes[n]['wall']:.1f}s, peak {sizes[n]['peak_mb']:,.0f} MB", flush=True)
    base = child(root / str(args.entities), "raw", url=args.warehouse)
    explained = child(root / str(args.entities), "explain", url=args.warehouse)
    ours = sizes[args.entities]
    rows = ours["scored"]
    lines = [
        ("raw kernel: XGBoost inplace_predict, matrix in memory", base["seconds"], base["rows"]),
        ("ours: scoring step (pyfunc predict, all chunks)", ours["scoring_seconds"], rows),
        ("raw whole job: pyarrow, inplace_predict, bulk write, Parquet", base["whole"], base["rows"]),
        ("ours: whole task (read features .. write DB + Parquet)", ours["seconds"], rows),
        ("ours: whole task with the top 3 reasons", explained["seconds"], rows),
        ("- of which the explanations", explained["explain_seconds"], rows),
    ]
    print(f"\n{'':<64}{'seconds':>10}{'rows/s':>12}")
    for label, seconds, n in lines:
        print(f"{label:<64}{seconds:>10.2f}{n / seconds:>12,.0f}")
    print(
        f"ratio scoring step / raw kernel: {base['seconds'] / ours['scoring_seconds']:.2f} (target >= 0.5); "
        f"whole task / raw whole job: {base['whole'] / ours['seconds']:.2f} (target >= 0.3)"
    )
    small, large = sizes[args.entities]["peak_mb"], sizes[args.large]["peak_mb"]
    print(f"peak memory: {small:,.0f} MB for {args.entities:,} rows, {large:,.0f} MB for {args.large:,} rows: "
          f"+{(large / small - 1):.0%} (target < +20%)")  # fmt: skip


if __name__ == "__main__":
    main()
