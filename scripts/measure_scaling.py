"""Measure how an LSTM layer and a self-attention layer scale with the sequence length T, and
how the parallel scan compares with the loop, on this machine; write book/data/scaling.json.

    python scripts/measure_scaling.py            # about 3-6 minutes on 2 cores
    python scripts/measure_scaling.py --quick    # a smoke test with short sequences

Chapter 11 draws its plots and fits its growth exponents from the committed JSON file: wall
clock times depend on the machine (and on what else runs on it), so a notebook that re-timed
them would print different numbers on every run. The file names the machine, the library
versions, the settings and the date, so a reader can re-run this script and compare.

What is measured, for each T, with TensorFlow pinned to one thread (`setup_tensorflow`):
* LSTM(64) over a batch (N, T, 64), returning every step's output;
* one self-attention layer, `MultiHeadAttention(num_heads=1, key_dim=64)`, queries, keys and
  values from the same (N, T, 64) batch;
each as a forward pass and as a training step (forward, gradient of a mean squared output,
Adam update), as the median of several repeats after a warm-up call (compiled with
tf.function). Peak memory is the growth of the process's peak resident set size (ru_maxrss)
over its value before the first length, each model in its own process and the lengths in
increasing order, so each reading is the peak reached by that length's largest tensors.
And the NumPy linear recurrence of `rnncourse.scan`, loop and parallel scan, (N, T, H) = (8, T, 64).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LENGTHS = [64, 128, 256, 512, 1024, 2048, 4096]
N, D = 4, 64
REPEATS = 3


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _time(fn, repeats: int) -> float:
    fn()  # warm-up: tracing and first allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(model_name: str, lengths: list[int], repeats: int) -> dict:
    """Run in a fresh process: time one model at every length, in increasing order."""
    from rnncourse.repro import setup_tensorflow

    keras = setup_tensorflow(seed=0)
    import numpy as np
    import tensorflow as tf

    if model_name == "lstm":
        layer = keras.layers.LSTM(D, return_sequences=True)

        def apply(x):
            return layer(x)
    elif model_name == "attention":
        layer = keras.layers.MultiHeadAttention(num_heads=1, key_dim=D)

        def apply(x):
            return layer(x, x)
    else:
        raise ValueError(f"unknown model {model_name!r}")
    optimizer = keras.optimizers.Adam(1e-3)
    forward = tf.function(lambda x: apply(x), reduce_retracing=True)

    @tf.function(reduce_retracing=True)
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(apply(x)))
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables))
        return loss

    rng = np.random.default_rng(0)
    apply(tf.constant(rng.standard_normal((N, 8, D)), dtype=tf.float32))  # build the weights
    base = _maxrss_mib()
    rows = []
    for T in lengths:
        x = tf.constant(rng.standard_normal((N, T, D)), dtype=tf.float32)
        t_forward = _time(lambda: forward(x).numpy(), repeats)
        t_train = _time(lambda: train_step(x).numpy(), repeats)
        rows.append({"T": T, "forward_s": t_forward, "train_step_s": t_train,
                     "peak_rss_growth_mib": _maxrss_mib() - base})
        print(f"{model_name:>9} T={T:>5}: forward {t_forward:.4f} s, train step {t_train:.4f} s, "
              f"peak RSS +{rows[-1]['peak_rss_growth_mib']:.0f} MiB", file=sys.stderr, flush=True)
    return {"params": int(sum(int(np.prod(v.shape)) for v in layer.trainable_variables)), "rows": rows}


def scan_timings(lengths: list[int], repeats: int) -> list[dict]:
    import numpy as np

    from rnncourse.scan import linear_recurrence_loop, linear_recurrence_scan

    rng = np.random.default_rng(0)
    rows = []
    for T in lengths:
        a = rng.uniform(0.9, 1.0, size=(8, T, 64))
        b = rng.standard_normal((8, T, 64))
        rows.append({"T": T, "loop_s": _time(lambda: linear_recurrence_loop(a, b), repeats + 2),
                     "scan_s": _time(lambda: linear_recurrence_scan(a, b), repeats + 2)})
        print(f"{'scan':>9} T={T:>5}: loop {rows[-1]['loop_s']:.4f} s, scan {rows[-1]['scan_s']:.4f} s",
              file=sys.stderr, flush=True)
    return rows


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "logical_cores": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(), "numpy": version("numpy"),
            "tensorflow": version("tensorflow-cpu"), "keras": version("keras"),
            "os": f"{platform.system()} {platform.release()}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short lengths, one repeat (a smoke test)")
    parser.add_argument("--out", default=str(ROOT / "book" / "data" / "scaling.json"))
    parser.add_argument("--worker", choices=["lstm", "attention"], help=argparse.SUPPRESS)
    parser.add_argument("--lengths", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=REPEATS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        lengths = [int(v) for v in args.lengths.split(",")]
        print(json.dumps(worker(args.worker, lengths, args.repeats)))
        return
    lengths = LENGTHS[:3] if args.quick else LENGTHS
    repeats = 1 if args.quick else REPEATS
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = dt.datetime.now(dt.timezone.utc)
    info = machine()
    models = {}
    for name in ["lstm", "attention"]:
        proc = subprocess.run([sys.executable, __file__, "--worker", name, "--lengths", ",".join(map(str, lengths)),
                               "--repeats", str(repeats)], capture_output=True, text=True, env=env, check=False)
        sys.stderr.write(proc.stderr)
        if proc.returncode:
            raise SystemExit(f"worker {name} failed with exit code {proc.returncode}")
        models[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {
        "what": "time and peak memory per batch as the sequence length T grows; see scripts/measure_scaling.py",
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": info,
        "settings": {"batch": N, "features": D, "units_or_key_dim": D, "threads": 1, "repeats": repeats,
                     "statistic": "median after one warm-up call", "dtype": "float32",
                     "scan": "NumPy float64, (N, T, H) = (8, T, 64)"},
        "lstm": models["lstm"],
        "attention": models["attention"],
        "scan": scan_timings(lengths, repeats),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
