"""Benchmark: the nightly drift report against the same per-column tests computed directly with SciPy.

    .venv/bin/python bench/drift.py [--rows 1000000] [--sample-rows 200000] [--no-full]

A synthetic reference window and current window of ``rows`` rows each (fixed seed):
20 float features of assorted shapes, 5 of them shifted in the current window, and a
``score`` column (a logistic function of a few features, so it moves with them). Then:

* ours: what the drift monitor does with them: ``pipelines.monitoring.data.sample`` of
  both windows to ``sample-rows``, ``pipelines.monitoring.report.drift_snapshot``
  (Evidently's ``DataDriftPreset`` over the 20 features plus ``ValueDrift`` of the score,
  ``MonitoringSpec`` defaults: Evidently's own choice of test for the features, PSI for
  the score) and ``drift_numbers``;
* scipy: the same tests by hand on the same sampled rows: ``scipy.stats.wasserstein_distance``
  divided by the reference's standard deviation (Evidently's "Wasserstein distance
  (normed)", drift when >= 0.1) per feature and Evidently's PSI binning (NumPy) for the
  score; and again on the full windows, unsampled (skip with ``--no-full``);
* render: ``snapshot.save_html`` of the same report, timed alone.

Each step runs in its own process that builds the windows itself; the peak is the process's
VmHWM, reset (``/proc/self/clear_refs``) after the windows are built and the libraries imported,
so it counts the windows resident in memory plus what the step adds. ``import evidently`` is
timed separately. Prints the table, whether both sides flag the same columns, the ratio
scipy time / ours, and a summary line against the targets (< 60 s, < 4 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FEATURES = [f"f{i:02d}" for i in range(20)]
SCORE = "score"
SEED = 7
# column -> (kind, shift in reference standard deviations, scale factor) in the current window
SHIFTED = {"f02": ("mean", 0.30, 1.0), "f05": ("mean", -0.50, 1.0), "f09": ("scale", 0.0, 1.5),
           "f13": ("mean", 0.20, 1.0), "f17": ("mean", 0.25, 1.0)}  # fmt: skip
SHAPES = ["normal", "lognormal", "uniform", "gamma", "student"]
SCORE_WEIGHTS = {"f00": 0.6, "f02": 0.8, "f05": -0.4, "f10": 0.3, "f11": -0.5}
TARGET_SECONDS, TARGET_MB = 60, 4096
WASSERSTEIN = "Wasserstein distance (normed)"


def _unit(rng, shape: str, n: int):
    """``n`` draws of one shape, standardised to mean 0 and sd 1 (by the shape's own moments)."""
    import numpy as np

    if shape == "normal":
        return rng.standard_normal(n)
    if shape == "lognormal":  # sigma 0.5: mean exp(1/8), var (e^0.25 - 1) e^0.25
        return (rng.lognormal(0.0, 0.5, n) - np.exp(0.125)) / np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))
    if shape == "uniform":
        return (rng.random(n) - 0.5) * np.sqrt(12)
    if shape == "gamma":  # k 2, theta 1
        return (rng.gamma(2.0, 1.0, n) - 2.0) / np.sqrt(2.0)
    return rng.standard_t(5, n) / np.sqrt(5 / 3)


def windows(rows: int):
    """Reference and current frames: 20 float64 features and the score, fixed seeds."""
    import numpy as np
    import pandas as pd

    frames = []
    for which in ("reference", "current"):
        rng = np.random.default_rng([SEED, int(which == "current")])
        data, logit = {}, np.zeros(rows)
        for i, name in enumerate(FEATURES):
            unit = _unit(rng, SHAPES[i % len(SHAPES)], rows)
            if which == "current" and name in SHIFTED:
                _, shift, scale = SHIFTED[name]
                unit = unit * scale + shift
            logit += SCORE_WEIGHTS.get(name, 0.0) * unit
            data[name] = 10.0 * (i + 1) + (i + 1) * unit  # assorted locations and scales
        data[SCORE] = 1 / (1 + np.exp(-(logit - 1.0)))
        frames.append(pd.DataFrame(data))
    return frames


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def reset_peak() -> float:
    """Reset VmHWM to the current RSS (so the peak that follows is the step's); returns that RSS in MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak_mb() -> float:
    """Peak resident memory since the last reset_peak (VmHWM; ru_maxrss cannot be reset)."""
    return _status("VmHWM")


def rows_hash(*frames) -> str:
    """Fingerprint of the rows a side tested, to check both sides saw the same ones."""
    import pandas as pd

    return "/".join(f"{int(pd.util.hash_pandas_object(f, index=False).sum()) & 0xFFFFFFFF:08x}" for f in frames)


def _evidently_modules() -> float:
    t0 = time.perf_counter()
    from pipelines.monitoring import report

    report._evidently()
    from evidently.metrics import ValueDrift  # noqa: F401
    from evidently.presets import DataDriftPreset  # noqa: F401

    return time.perf_counter() - t0


def ours(rows: int, sample_rows: int) -> dict:
    """The project's path: sample both windows, drift_snapshot, drift_numbers."""
    from pipelines.config import MonitoringSpec
    from pipelines.monitoring.data import sample
    from pipelines.monitoring.report import drift_numbers, drift_snapshot

    reference, current = windows(rows)
    import_seconds = _evidently_modules()
    spec = MonitoringSpec(sample_rows=sample_rows)
    rss = reset_peak()
    t0 = time.perf_counter()
    ref, cur = sample(reference, spec.sample_rows), sample(current, spec.sample_rows)
    snapshot = drift_snapshot(ref, cur, FEATURES, SCORE, spec)
    numbers = drift_numbers(snapshot, FEATURES, SCORE)
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    return {
        "seconds": seconds,
        "import_seconds": import_seconds,
        "rss_mb": rss,
        "peak_mb": peak,
        "rows": len(ref),
        "hash": rows_hash(ref, cur),
        "scores": {r["column"]: r["score"] for r in numbers["feature_drift"]},
        "methods": sorted({r["method"] for r in numbers["feature_drift"]}),
        "drifted": numbers["drifted_features"],
        "prediction": numbers["prediction_drift"],
        "version": numbers["evidently_version"],
    }


def render(rows: int, sample_rows: int) -> dict:
    """The same report, built untimed, then ``save_html`` alone."""
    from pipelines.config import MonitoringSpec
    from pipelines.monitoring.data import sample
    from pipelines.monitoring.report import drift_snapshot

    reference, current = windows(rows)
    _evidently_modules()
    spec = MonitoringSpec(sample_rows=sample_rows)
    snapshot = drift_snapshot(sample(reference, sample_rows), sample(current, sample_rows), FEATURES, SCORE, spec)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drift.html"
        rss = reset_peak()
        t0 = time.perf_counter()
        snapshot.save_html(str(path))
        seconds = time.perf_counter() - t0
        peak = peak_mb()
        size = path.stat().st_size
    return {"seconds": seconds, "rss_mb": rss, "peak_mb": peak, "rows": sample_rows, "html_mb": size / 2**20}


def _psi(reference, current) -> float:
    """Evidently's PSI of a numerical column with more than 20 values (stattests/psi.py, utils.get_binned_data):
    Sturges bins over both samples, shares per bin, empty bins filled with a small share."""
    import numpy as np

    bins = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    shares = []
    for values in (reference, current):
        share = np.histogram(values, bins)[0] / len(values)
        smallest = share[share != 0].min()
        np.place(share, share == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
        shares.append(share)
    return float(np.sum((shares[0] - shares[1]) * np.log(shares[0] / shares[1])))


def scipy_tests(rows: int, sample_rows: int | None) -> dict:
    """The same tests by hand: normed Wasserstein per feature (SciPy), PSI of the score (NumPy)."""
    import numpy as np
    from scipy import stats

    from pipelines.config import MonitoringSpec
    from pipelines.monitoring.data import sample

    reference, current = windows(rows)
    spec = MonitoringSpec()
    rss = reset_peak()
    t0 = time.perf_counter()
    if sample_rows:
        reference, current = sample(reference, sample_rows), sample(current, sample_rows)
    scores = {}
    for column in FEATURES:
        ref, cur = reference[column].to_numpy(), current[column].to_numpy()
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]  # Evidently drops NaN and inf first
        scores[column] = float(stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))
    ref, cur = reference[SCORE].to_numpy(), current[SCORE].to_numpy()
    psi = _psi(ref[np.isfinite(ref)], cur[np.isfinite(cur)])
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    return {
        "seconds": seconds,
        "rss_mb": rss,
        "peak_mb": peak,
        "rows": len(reference),
        "hash": rows_hash(reference, current),
        "scores": scores,
        "drifted": [c for c in FEATURES if scores[c] >= 0.1],
        "prediction": {"score": psi, "drifted": psi >= spec.prediction_threshold},
    }


def child(what: str, rows: int, sample_rows: int) -> dict:
    """Each step in its own process: peaks are their own, and this one stays small."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--rows", str(rows), "--sample-rows", str(sample_rows)],
        capture_output=True,
        text=True,
        env=os.environ | {"DO_NOT_TRACK": "1"},
    )
    if out.returncode:
        sys.exit(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each window (reference, current)")
    parser.add_argument("--sample-rows", type=int, default=200_000, help="monitoring.sample_rows")
    parser.add_argument("--no-full", action="store_true", help="skip the SciPy tests on the unsampled windows")
    parser.add_argument("--child", choices=["ours", "render", "scipy", "scipy-full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        steps = {
            "ours": lambda: ours(args.rows, args.sample_rows),
            "render": lambda: render(args.rows, args.sample_rows),
            "scipy": lambda: scipy_tests(args.rows, args.sample_rows),
            "scipy-full": lambda: scipy_tests(args.rows, None),
        }
        print(json.dumps(steps[args.child]()))
        return

    tested = min(args.rows, args.sample_rows)
    print(
        f"drift report: current {args.rows:,} rows vs reference {args.rows:,} rows x {len(FEATURES)} float features "
        f"+ '{SCORE}'; shifted: {', '.join(SHIFTED)}\nsampling: both windows sampled to {tested:,} rows each by "
        f"pipelines.monitoring.data.sample (seed 0) before any test (monitoring.sample_rows = {args.sample_rows:,})",
        flush=True,
    )
    t0 = time.perf_counter()
    results = {}
    for what in ("ours", "scipy", "render", *(() if args.no_full else ("scipy-full",))):
        results[what] = child(what, args.rows, args.sample_rows)
        print(f"  {what}: {results[what]['seconds']:.1f}s, peak {results[what]['peak_mb']:,.0f} MB", flush=True)
    project, sp = results["ours"], results["scipy"]

    lines = [
        ("ours: sample + drift_snapshot + drift_numbers", project, f"{len(project['drifted'])}/{len(FEATURES)}"),
        ("scipy: same tests, same sampled rows", sp, f"{len(sp['drifted'])}/{len(FEATURES)}"),
    ]
    if "scipy-full" in results:
        full = results["scipy-full"]
        lines.append(("scipy: same tests, full windows (no sampling)", full, f"{len(full['drifted'])}/{len(FEATURES)}"))
    lines.append(("render: snapshot.save_html (report built untimed)", results["render"], ""))
    print(f"\n{'step':<52}{'rows/side':>11}{'seconds':>9}{'RSS before':>12}{'peak MB':>9}{'drifted':>9}")
    for label, r, drifted in lines:
        print(f"{label:<52}{r['rows']:>11,}{r['seconds']:>9.2f}{r['rss_mb']:>12,.0f}{r['peak_mb']:>9,.0f}{drifted:>9}")
    print(f"{'(import evidently + presets, before ours, untimed)':<52}{'':>11}{project['import_seconds']:>9.2f}")
    print(f"HTML report: {results['render']['html_mb']:.1f} MB")

    ratio = sp["seconds"] / project["seconds"]
    same_rows = project["hash"] == sp["hash"]
    same_flags = project["drifted"] == sp["drifted"]
    gap = max(abs(project["scores"][c] - sp["scores"][c]) for c in FEATURES)
    pred_gap = abs(project["prediction"]["score"] - sp["prediction"]["score"])
    print(f"\nEvidently {project['version']}; feature test chosen: {', '.join(project['methods'])}; score test: "
          f"{project['prediction']['method']} (threshold {project['prediction']['threshold']})")  # fmt: skip
    if project["methods"] != [WASSERSTEIN]:
        print(f"WARNING: the feature test is not {WASSERSTEIN}: the SciPy side does not compute the same test")
    print(f"same sampled rows on both sides: {'yes' if same_rows else 'NO'} (row hashes {project['hash']})")
    print(f"drifted features, ours : {', '.join(project['drifted']) or 'none'}")
    print(f"drifted features, scipy: {', '.join(sp['drifted']) or 'none'} -> {'same' if same_flags else 'DIFFERENT'}")
    print(f"largest |score difference| over the 20 features: {gap:.2e}; score column PSI: ours "
          f"{project['prediction']['score']:.4f} vs {sp['prediction']['score']:.4f} (|diff| {pred_gap:.2e}), "
          f"drifted {project['prediction']['drifted']} / {sp['prediction']['drifted']}")  # fmt: skip
    if "scipy-full" in results:
        full = results["scipy-full"]
        full_gap = max(abs(full["scores"][c] - sp["scores"][c]) for c in FEATURES)
        print(f"full windows vs sampled: drifted {'same' if full['drifted'] == sp['drifted'] else 'DIFFERENT'} "
              f"({', '.join(full['drifted'])}), largest |score difference| {full_gap:.3f}")  # fmt: skip
    for c in SHIFTED:
        print(f"  {c} ({SHIFTED[c][0]}): ours {project['scores'][c]:.4f}  scipy {sp['scores'][c]:.4f}", end="")
        print(f"  scipy full {results['scipy-full']['scores'][c]:.4f}" if "scipy-full" in results else "")
    print(f"ratio scipy time / ours: {ratio:.3f} (ours takes {1 / ratio:.1f}x the SciPy time on the same rows)")

    ok_time, ok_mem = project["seconds"] < TARGET_SECONDS, project["peak_mb"] < TARGET_MB
    print(
        f"\nSUMMARY: drift report of {args.rows:,} vs {args.rows:,} rows x {len(FEATURES)} features, SAMPLED to "
        f"{tested:,} rows per window: {project['seconds']:.1f}s (target < {TARGET_SECONDS}s: "
        f"{'met' if ok_time else 'MISSED'}; +{project['import_seconds']:.1f}s import), peak "
        f"{project['peak_mb']:,.0f} MB (target < {TARGET_MB // 1024} GB: {'met' if ok_mem else 'MISSED'}); "
        f"SciPy on the same rows {sp['seconds']:.2f}s (ratio {ratio:.3f}), same drifted columns: "
        f"{'yes' if same_flags else 'NO'}; HTML {results['render']['seconds']:.1f}s; "
        f"benchmark took {time.perf_counter() - t0:.0f}s"
    )


if __name__ == "__main__":
    main()
