"""Benchmark: one use case at 1M, 3M and 10M rows a day, stage by stage, against the raw libraries.

    .venv/bin/python bench/scale.py [--sizes 1000000,3000000,10000000]
                                    [--stages ingest,features,training,inference,drift]

For each size N (rows a day) and each stage, three fresh processes: one prepares the
stage's input (untimed), one runs ours, one runs the raw library doing the same work,
so each peak (``VmHWM`` of /proc/self/status) is that process's own:

* ingest: ``bench/ingest.py``'s ours (``ingest_interval``: chunked read, Great Expectations
  validation of every row, Data Docs, atomic write; the validation timed apart) against its
  raw ``pandas.read_sql`` + ``to_parquet``, on the churn simulator's first day of N source rows;
* features: ``build_feature_partition`` of one day from a curated history of N rows a day
  (the 14 days its longest window reads, ``bench/synthetic.py``) against a raw read of the
  same partitions (pyarrow, text as categories) and a pandas ``groupby`` computing the same
  29 columns;
* training: ``bench/train.py``'s training task on a window of N rows (N/10 customers x 10
  labelled days) against its raw whole job (read, ``merge_asof``, split, ``xgboost.train``);
* inference: ``bench/inference.py``'s scoring task (reasons off) on N customers against its
  raw whole job; the scoring step is also compared with the raw kernel (``inplace_predict``);
* drift: ``bench/drift.py``'s ours on windows of N rows (both sampled to the config's
  ``monitoring.sample_rows`` first) against its SciPy tests on the same sampled rows, and
  SciPy on the full windows. Its peak is counted from after the windows are built (they
  stay resident), as in ``bench/drift.py``.

A process whose resident memory passes ``--memory-cap-mb`` (default 12,000: the machine
is shared) or that runs longer than ``--timeout`` is stopped and recorded as failed, with
its last output and the Python stack it was stopped in. Prints one table, then per stage the
growth from the smallest to the largest size (time per row, 1.0 = linear) and whether every
peak stayed under 8 GB.
Results go to ``$MLOPS_HOME/bench_scale/results.json`` (merged with earlier runs, by stage
and size; ``--report`` prints them without running); each stage's state is deleted after it
ran, its processes' logs are kept in ``bench_scale/state/<stage>/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import faulthandler
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import drift  # noqa: E402
import inference  # noqa: E402
import ingest  # noqa: E402
import train  # noqa: E402
from inference import peak_mb  # noqa: E402
from synthetic import write_activity_partitions  # noqa: E402

STAGES = ("ingest", "features", "training", "inference", "drift")
SIDES = {"drift": ("prepare", "ours", "raw", "raw-full")}
TARGET_MB = 8 * 1024


def _usecase():
    from pipelines.config import get_usecase

    return get_usecase("churn")


# --- ingest ---------------------------------------------------------------------------------------


def ingest_prepare(home: Path, n: int) -> dict:
    """The churn simulator's first day of about ``n`` source rows, inserted 200,000 rows at a time
    (the simulator's own writer holds a day's rows as dicts: over 12 GB for 10M rows)."""
    import sqlalchemy as sa

    from pipelines.simulation.churn import World
    from pipelines.stores import source

    usecase = _usecase()
    dataset = usecase.source.datasets["activity"]
    world = World(start=ingest.START.date(), customers=math.ceil(n / 0.99), seed=1,
                  label_delay_days=usecase.label.delay_days)  # fmt: skip
    frame = next(iter(world.simulate(1))).activity
    url = f"sqlite:///{home / 'source.db'}"
    engine = source.make_engine(url)
    table = source.table_for(dataset, sa.MetaData())
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        for i in range(0, len(frame), 200_000):
            chunk = frame.iloc[i : i + 200_000].copy()
            for col in chunk.select_dtypes(["datetime", "datetimetz"]):
                chunk[col] = chunk[col].dt.tz_localize(None) if chunk[col].dt.tz else chunk[col]
                chunk[col] = chunk[col].astype(object)
            conn.execute(table.insert(), chunk.to_dict("records"))
    engine.dispose()
    return {"url": url, "end": (ingest.START + dt.timedelta(days=1)).isoformat()}


def ingest_ours(home: Path, prep: dict) -> dict:
    """bench/ingest.py's ours, with the validation (GX on the whole frame) timed apart."""
    from pipelines.ingestion import ingest as pipeline

    validate, spent = pipeline.validate_partition, []

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return validate(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    pipeline.validate_partition = timed
    result = ingest.run_ours(prep["url"], dt.datetime.fromisoformat(prep["end"]))
    return {"seconds": result["seconds"], "rows": result["rows"], "validation_seconds": sum(spent)}


def ingest_raw(home: Path, prep: dict) -> dict:
    result = ingest.run_raw(prep["url"], dt.datetime.fromisoformat(prep["end"]), home / "raw.parquet")
    return {"seconds": result["seconds"], "rows": result["rows"]}


# --- features -------------------------------------------------------------------------------------


def features_prepare(home: Path, n: int) -> dict:
    """The curated days the newest day's features read: its longest window."""
    start, end = write_activity_partitions(n, _usecase().features.history_days)
    return {"start": start.isoformat(), "end": end.isoformat()}


def features_ours(home: Path, prep: dict) -> dict:
    from pipelines.features.build import build_feature_partition

    start, end = dt.datetime.fromisoformat(prep["start"]), dt.datetime.fromisoformat(prep["end"])
    t0 = time.perf_counter()
    result = build_feature_partition(_usecase(), start, end)
    return {"seconds": time.perf_counter() - t0, "rows": result.info.rows}


def features_raw(home: Path, prep: dict) -> dict:
    """The same curated files read with pyarrow (text as categories), the same 29 columns by a pandas
    groupby, written with to_parquet."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    usecase = _usecase()
    spec, dataset = usecase.features, usecase.source.datasets[usecase.features.dataset]
    entity, ts = usecase.entity.name, dataset.event_time
    start, end = pd.Timestamp(prep["start"]), pd.Timestamp(prep["end"])
    t0 = time.perf_counter()
    paths = sorted((home / "curated" / "churn" / "activity").glob("*.parquet"))
    history = pa.concat_tables([pq.read_table(p) for p in paths]).to_pandas(strings_to_categorical=True)
    history = history[history[ts] >= end - pd.Timedelta(days=spec.history_days)]
    active = history.loc[history[ts] >= start, entity].unique()
    history = history[history[entity].isin(active)].sort_values([entity, ts])
    history["day"] = history[ts].dt.floor("D")
    parts = []
    for window in spec.windows_days:
        recent = history[history[ts] >= end - pd.Timedelta(days=window)]
        named = {f"active_days_{window}d": ("day", "nunique")}
        named |= {f"{c}_{how}_{window}d": (c, how) for c, hows in spec.aggregates.items() for how in hows}
        named |= {f"_{c}_mean_{window}d": (c, "mean") for c in spec.trends}
        parts.append(recent.groupby(entity).agg(**named))
    out = pd.concat(parts, axis=1)
    short, long = spec.windows_days[0], spec.windows_days[-1]
    for c in spec.trends:
        out[f"{c}_trend"] = out[f"_{c}_mean_{short}d"] - out[f"_{c}_mean_{long}d"]
    last = history.groupby(entity).tail(1).set_index(entity)
    for c in spec.latest:
        out[f"{c}_latest"] = last[c].astype("float64")
    for c in spec.one_hot:
        for value in dataset.column(c).values or []:
            out[f"{c}_is_{value}"] = last[c].eq(value).astype("int64")
    out = out.drop(columns=[c for c in out if c.startswith("_")]).reset_index()
    out.to_parquet(home / "raw_features.parquet", index=False)
    return {"seconds": time.perf_counter() - t0, "rows": len(out), "columns": out.shape[1] - 1}


# --- training -------------------------------------------------------------------------------------


def training_prepare(home: Path, n: int) -> dict:
    return {"end": train.prepare(home, max(1, n // 10), 10).isoformat()}


def training_ours(home: Path, prep: dict) -> dict:
    result = train.training_task(dt.datetime.fromisoformat(prep["end"]))
    return {key: result[key] for key in ("seconds", "rows", "fit_seconds", "steps")}


def training_raw(home: Path, prep: dict) -> dict:
    return train.raw_whole(home, dt.datetime.fromisoformat(prep["end"]))


# --- inference ------------------------------------------------------------------------------------


def inference_prepare(home: Path, n: int) -> dict:
    inference.prepare(home, n)
    return {}


def inference_ours(home: Path, prep: dict) -> dict:
    result = inference.score(home, 0, "")
    return {"seconds": result["seconds"], "rows": result["scored"], "scoring_seconds": result["scoring_seconds"]}


def inference_raw(home: Path, prep: dict) -> dict:
    result = inference.raw(home, "")
    return {"seconds": result["whole"], "rows": result["rows"], "kernel_seconds": result["seconds"]}


# --- drift ----------------------------------------------------------------------------------------


def sample_rows() -> int:
    return _usecase().monitoring.sample_rows


def drift_prepare(home: Path, n: int) -> dict:
    return {"sample_rows": sample_rows()}


def drift_side(side: str, prep: dict, n: int) -> dict:
    """ours: bench/drift.py's report; raw: its SciPy tests on the same sampled rows; raw-full: on the
    full windows. Peaks are counted from after the windows are built (bench/drift.py's reset)."""
    if side == "ours":
        result = drift.ours(n, prep["sample_rows"])
    else:
        result = drift.scipy_tests(n, None if side == "raw-full" else prep["sample_rows"])
    keep = ("seconds", "peak_mb", "rss_mb", "drifted")
    return {key: result[key] for key in keep} | {"rows": n, "tested_rows": result["rows"]}


def run_side(stage: str, side: str, home: Path, n: int, prep: dict) -> dict:
    """One side of one stage, in this (fresh) process."""
    os.environ["MLOPS_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    if side == "prepare":
        if stage not in ("training", "inference"):  # those two rebuild their folder themselves
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
        return globals()[f"{stage}_prepare"](home, n)
    if stage == "drift":
        return drift_side(side, prep, n)
    result = globals()[f"{stage}_{side}"](home, prep)
    return result | {"peak_mb": peak_mb()}


# --- the parent -----------------------------------------------------------------------------------


def child(stage: str, side: str, home: Path, n: int, prep: dict, cap_mb: float, timeout: float) -> dict:
    """Run one side in a fresh process; stop it above ``cap_mb`` resident or after ``timeout`` seconds."""
    command = [sys.executable, __file__, "--child", stage, "--side", side, "--home", str(home), "--n", str(n),
               "--prep", json.dumps(prep)]  # fmt: skip
    log = home.parent / f"{home.name}.{side}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0, peak, stopped = time.perf_counter(), 0.0, ""
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                env=os.environ | {"DO_NOT_TRACK": "1"})  # fmt: skip
        while proc.poll() is None:
            rss = _tree_rss_mb(proc.pid)
            peak = max(peak, rss)
            if rss > cap_mb:
                stopped = f"stopped: resident memory {rss:,.0f} MB > cap {cap_mb:,.0f} MB"
            elif time.perf_counter() - t0 > timeout:
                stopped = f"stopped: still running after {timeout:.0f}s"
            if stopped:  # the stack it was stopped in goes to its log (faulthandler, see main)
                proc.send_signal(signal.SIGUSR1)
                time.sleep(1)
                proc.kill()
                break
            time.sleep(0.5)
        out = proc.communicate()[0]
    wall = time.perf_counter() - t0
    if stopped or proc.returncode:
        tail = log.read_text()[-2000:]
        return {"error": stopped or f"exit status {proc.returncode}", "wall": wall, "polled_peak_mb": peak,
                "last_output": tail}  # fmt: skip
    return json.loads(out.strip().splitlines()[-1]) | {"wall": wall}


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a stage may fork), from /proc."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        total += next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        pids.extend(int(c) for c in children)
    return total


def run_stage(stage: str, n: int, state: Path, cap_mb: float, timeout: float) -> dict:
    home = state / stage / str(n)
    prep = child(stage, "prepare", home, n, {}, cap_mb, timeout)
    if "error" in prep:
        return {"prepare": prep}
    out = {"prepare": prep}
    for side in SIDES.get(stage, ("prepare", "ours", "raw"))[1:]:
        out[side] = child(stage, side, home, n, prep, cap_mb, timeout)
        line = out[side].get("error") or f"{out[side]['seconds']:.1f}s, peak {out[side]['peak_mb']:,.0f} MB"
        print(f"  {stage} {side} at {n:,}: {line}", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return out


def _row(stage: str, n: int, r: dict) -> str:
    ours, raw = r.get("ours", {}), r.get("raw", {})
    if "error" in r.get("prepare", {}):
        return f"{stage:<11}{n:>12,}  prepare failed: {r['prepare']['error']}"
    if "error" in ours:
        return f"{stage:<11}{n:>12,}  ours failed: {ours['error']}"

    def cell(d: dict, key: str, fmt: str) -> str:
        return format(d[key], fmt) if key in d else "failed"

    ratio = f"{raw['seconds'] / ours['seconds']:.2f}" if "seconds" in raw else "-"
    return (f"{stage:<11}{ours['rows']:>12,}{ours['seconds']:>10.1f}{cell(raw, 'seconds', '.1f'):>10}{ratio:>10}"
            f"{ours['peak_mb']:>10,.0f}{cell(raw, 'peak_mb', ',.0f'):>10}")  # fmt: skip


def report(results: dict, stages: list[str]) -> None:
    print(f"\n{'stage':<11}{'rows':>12}{'ours s':>10}{'raw s':>10}{'raw/ours':>10}{'ours MB':>10}{'raw MB':>10}")
    for stage in stages:
        for n in sorted(results.get(stage, {}), key=int):
            print(_row(stage, int(n), results[stage][n]))
    print()
    for stage in stages:
        done = {int(n): r["ours"] for n, r in results.get(stage, {}).items() if "seconds" in r.get("ours", {})}
        extras = []
        for n, r in sorted(results.get(stage, {}).items(), key=lambda kv: int(kv[0])):
            ours, raw = r.get("ours", {}), r.get("raw", {})
            if "validation_seconds" in ours:
                extras.append(f"{int(n):,}: validation {ours['validation_seconds']:.1f}s")
            if "scoring_seconds" in ours and "kernel_seconds" in raw:
                kernel, step = raw["kernel_seconds"], ours["scoring_seconds"]
                extras.append(f"{int(n):,}: scoring step {step:.2f}s vs inplace_predict {kernel:.2f}s, ratio "
                              f"{kernel / step:.2f}")  # fmt: skip
            if "fit_seconds" in ours:
                extras.append(f"{int(n):,}: of which the fit {ours['fit_seconds']:.1f}s")
            if "tested_rows" in ours:
                full = r.get("raw-full", {})
                extras.append(f"{int(n):,}: {ours['tested_rows']:,} rows tested per window (sampled); SciPy on "
                              f"the full windows {full.get('seconds', float('nan')):.1f}s, peak "
                              f"{full.get('peak_mb', float('nan')):,.0f} MB")  # fmt: skip
        sides = [(int(n), k, s) for n, r in results.get(stage, {}).items() for k, s in r.items() if isinstance(s, dict)]
        ours_peaks = [s.get("peak_mb", s.get("polled_peak_mb", 0)) for _, k, s in sides if k == "ours"]
        raw_peaks = [s.get("peak_mb", s.get("polled_peak_mb", 0)) for _, k, s in sides if k.startswith("raw")]
        failed = [f"{n:,} {k}" for n, k, s in sides if "error" in s]
        growth = ""
        if len(done) >= 2:
            lo, hi = min(done), max(done)
            per_row = (done[hi]["seconds"] / done[hi]["rows"]) / (done[lo]["seconds"] / done[lo]["rows"])
            memory = done[hi]["peak_mb"] / done[lo]["peak_mb"]
            kind = "linear or better" if per_row <= 1.15 else "WORSE than linear"
            growth = (f"growth {lo:,} -> {hi:,}: time per row x{per_row:.2f} ({kind}), "
                      f"peak memory x{memory:.2f} for x{done[hi]['rows'] / done[lo]['rows']:.1f} rows; ")  # fmt: skip
        under = all(p < TARGET_MB for p in ours_peaks) and not any(s.endswith(" ours") for s in failed)
        print(f"{stage}: {growth}ours under 8 GB at every size: {'yes' if under else 'NO'} (max "
              f"{max(ours_peaks, default=0):,.0f} MB; raw max {max(raw_peaks, default=0):,.0f} MB)"
              f"{'; failed: ' + ', '.join(failed) if failed else ''}")  # fmt: skip
        for line in extras:
            print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000,10000000", help="rows a day, comma-separated")
    parser.add_argument("--stages", default=",".join(STAGES), help="a subset of " + ",".join(STAGES))
    parser.add_argument("--memory-cap-mb", type=float, default=12_000)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    parser.add_argument("--report", action="store_true", help="only print the saved results of these sizes and stages")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prep", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        faulthandler.register(signal.SIGUSR1)
        print(json.dumps(run_side(args.child, args.side, args.home, args.n, json.loads(args.prep)), default=str))
        return

    stages = [s.strip() for s in args.stages.split(",")]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        sys.exit(f"unknown stages {unknown}; expected some of {', '.join(STAGES)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(os.environ.get("MLOPS_HOME") or REPO / "var") / "bench_scale"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "results.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    results = saved.setdefault("results", {})
    print(f"sizes {', '.join(f'{n:,}' for n in sizes)}; stages {', '.join(stages)}; drift sampled to "
          f"monitoring.sample_rows = {sample_rows():,} rows per window", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    for n in [] if args.report else sizes:
        for stage in stages:
            t = time.perf_counter()
            result = run_stage(stage, n, root / "state", args.memory_cap_mb, args.timeout)
            results.setdefault(stage, {})[str(n)] = result
            results[stage][str(n)]["measured"] = dt.date.today().isoformat()
            print(f"{stage} at {n:,} rows: {time.perf_counter() - t:.0f}s in all", flush=True)
            saved["sample_rows"] = sample_rows()
            path.write_text(json.dumps(saved, indent=2, default=str))
    report({s: {k: v for k, v in results.get(s, {}).items() if int(k) in sizes} for s in stages}, stages)
    print(f"\nbenchmark took {time.perf_counter() - t0:.0f}s; results in {path}")


if __name__ == "__main__":
    main()
