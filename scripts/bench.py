"""Benchmarks: the package's NumPy RNN, LSTM and GRU against the limit of their matrix products,
against a compiled Keras training step, and batched training against one sequence at a time.
Writes book/data/benchmarks.json, which the Benchmarks appendix page draws.

    make bench                                  # about half an hour on 2 cores (layers, batching, fusion)
    python scripts/bench.py --quick             # a smoke test with small sizes (a minute)
    python scripts/bench.py --threads 2         # BLAS and TensorFlow on two threads only (default 2,1)
    python scripts/bench.py --only batching     # one part; the others keep their previous results
    python scripts/bench.py --course            # also: every notebook, the book build, grading
    python scripts/bench.py --only target --threads 2   # the target size measured once more, added
                                                # to the file's record of such runs (target_history)
    python scripts/bench.py --only paired --threads 2   # the same with paired ratios (each round's
                                                # floor over its own steps: bench_target_paired)
    python scripts/bench.py --only scaling --threads 2  # its efficiency at one thread and what the
                                                # second thread gives (bench_target_scaling)
    python scripts/bench.py --only parallel --threads 2 # the same with rnncourse.parallel's step too
    python scripts/bench.py --only lengths      # NumPy against Keras at lengths 25 to 800 (bench_lengths),
                                                # each run added to the earlier ones

How it measures (as a performance engineer would, on a machine that may be shared):
* every timed function runs once untimed first (tracing, allocation, BLAS warm-up);
* the variants being compared are timed round-robin, one repetition of each in turn, so that a
  slow spell on a shared machine hits all of them alike; the figure kept is the median;
* the results are ratios taken within one run (efficiency = floor time / step time, NumPy time
  / Keras time), which move much less between machines and runs than absolute times;
* float32 throughout, the precision Keras trains in; the data are random (timing does not
  depend on the values, only on the shapes).

A training step is the forward pass and BPTT for a loss that reads every hidden state,
L = sum(h * G) for a fixed random G (so dL/dh = G), giving the gradients of the layer's three
weight arrays. The gradient with respect to the inputs is not part of it: a first layer fed
with data never needs it, and Keras does not compute it either. No optimizer update is timed
(it is the same small element-wise work on either side).

The two floors are the matrix products alone, on preallocated arrays of the same shapes:
* per-step: what an implementation that works one step at a time must multiply: per step,
  x_t W and h_{t-1} U forward, da_t U^T, x_t^T da_t and h_{t-1}^T da_t backward;
* hoisted: the fewest products the algorithm needs: X W once for all steps, per step only
  h_{t-1} U and da_t U^T (they wait for the previous step), then X^T dA and H^T dA once.
Each per-step product is timed in both layouts (h as rows, h as columns) and the faster is
kept, so the floors are what this BLAS can do, not what one layout allows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "book" / "data" / "benchmarks.json"


def _set_threads_before_imports(threads: int) -> None:
    # BLAS and TensorFlow read these when they load, so they must be set before the imports.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ----------------------------------------------------------------------------- timing
def timed_round_robin(functions: dict, min_repeats: int = 5, min_seconds: float = 1.0,
                      max_repeats: int = 50, block: int = 1, pause: float = 0.0, untimed_first: bool = False) -> dict:
    """Median seconds of each function, timed in turn: `block` repetitions of one, then of the
    next, and so on round the list, with `pause` seconds between blocks. With untimed_first,
    each block starts with one more repetition that is not timed: it pays for whatever the
    previous function left behind (its arrays in the caches, its idle BLAS thread still
    spinning on a core).

    block=1 interleaves single repetitions (the best defence against a machine whose speed
    drifts). Functions from different libraries are timed in blocks with a pause between: a
    thread pool that has just finished spins for a while before it sleeps (TensorFlow's does),
    and would otherwise steal the cores from the next library's first repetition.
    """
    for fn in functions.values():
        fn()  # warm-up
        time.sleep(pause)
    times = {name: [] for name in functions}
    started = time.perf_counter()
    while True:
        for name, fn in functions.items():
            if pause:
                time.sleep(pause)
            if untimed_first:
                fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        n = len(times[next(iter(times))])
        if n >= max_repeats or (n >= min_repeats and time.perf_counter() - started >= min_seconds):
            break
    return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "repeats": len(ts)}
            for name, ts in times.items()}


# ----------------------------------------------------------------------------- machine
def machine_info() -> dict:
    import numpy as np
    from threadpoolctl import threadpool_info

    cpu = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "vendor_id") and key not in cpu:
                cpu[key] = value.strip()
            if key == "flags" and "flags" not in cpu:
                flags = set(value.split())
                cpu["flags"] = sorted(f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_tile")
                                      if f in flags)
    except OSError:
        cpu["model name"] = platform.processor()
    blas = [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import tensorflow as tf
        import keras
        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    except ImportError:
        pass
    try:  # the fused and one-pool steps are compiled by Numba
        import numba
        versions["numba"] = numba.__version__
    except ImportError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "blas": blas,
        "versions": versions,
        "environment": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                                                       "TF_ENABLE_ONEDNN_OPTS", "NPY_DISABLE_CPU_FEATURES")},
        "load_average_at_start": os.getloadavg(),
        "git_commit": commit,
        "git_dirty": _working_tree_changed(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _working_tree_changed() -> bool | None:
    """Whether the timed code differs from the commit: tracked files under rnncourse/ or scripts/
    changed and not yet committed (None without git)."""
    try:
        return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "rnncourse",
                                    "scripts"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None


# ------------------------------------------------------------------ NumPy steps and floors
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
INPUT_DIM = 128


def numpy_problem(kind: str, N: int, T: int, H: int, D: int = INPUT_DIM, seed: int = 0) -> dict:
    """Weights initialised as Keras does, random inputs and a random upstream gradient, float32."""
    import numpy as np

    from rnncourse import gru, lstm, rnn

    rng = np.random.default_rng(seed)
    f32 = np.float32
    init = {"rnn": rnn.init_rnn_params, "lstm": lstm.init_lstm_params, "gru": gru.init_gru_params}[kind]
    params = init(D, H, rng, f32)
    return {"x": rng.standard_normal((N, T, D)).astype(f32), "h0": np.zeros((N, H), f32),
            "params": params, "dh": rng.standard_normal((N, T, H)).astype(f32)}


def numpy_steps(kind: str, problem: dict, threads: int = 1, pool=None, parallel: bool = False) -> dict:
    """Closures for one training step of the clear code and of the fast path; with threads > 1
    also the fast path with the batch split over that many cores (`fast.map_batch_slices`,
    one BLAS thread per slice), the weight gradients summed afterwards; with `pool` (a
    `processes.BatchProcesses`) the same split over processes instead of threads; and with
    parallel=True, for the LSTM, `rnncourse.parallel`'s step on `threads` threads of Numba's
    pool ("fused_parallel")."""
    from rnncourse import fast, gru, lstm, rnn
    from rnncourse.processes import fast_layer_gradients

    x, h0, p, dh = problem["x"], problem["h0"], problem["params"], problem["dh"]
    weights = (kind, p["kernel"], p["recurrent_kernel"], p["bias"])
    ws = fast.Workspace()  # the fast path's buffers, reused from one step to the next as in training
    if kind == "rnn":
        def clear():
            rnn.rnn_backward(dh, rnn.rnn_forward(x, h0, **p)[1])
    elif kind == "lstm":
        def clear():
            lstm.lstm_backward(dh, lstm.lstm_forward(x, h0, h0, **p)[2])
    else:
        def clear():
            gru.gru_backward(dh, gru.gru_forward(x, h0, **p)[1])

    def quick():
        fast_layer_gradients(x, h0, dh, *weights, workspace=ws)

    steps = {"clear": clear, "fast": quick}
    if kind == "lstm":
        fused_ws = fast.Workspace()

        def fused():
            fast_layer_gradients(x, h0, dh, *weights, workspace=fused_ws, fused=True)

        steps["fused"] = fused
        if parallel:
            from rnncourse import parallel as _parallel

            parallel_ws = fast.Workspace()

            def fused_parallel():
                cache = _parallel.lstm_forward_parallel(x, h0, h0, *weights[1:], workspace=parallel_ws,
                                                        threads=threads)[2]
                return _parallel.lstm_backward_parallel(dh, cache, input_gradient=False, threads=threads)[3:]

            steps["fused_parallel"] = fused_parallel
    if threads > 1 and x.shape[0] >= threads:
        for name, use_fused in (("fast_split", False), ("fused_split", True)):
            if use_fused and kind != "lstm":
                continue
            slice_ws = [fast.Workspace() for _ in range(threads)]

            def one_slice(i, x_i, h0_i, dh_i, slice_ws=slice_ws, use_fused=use_fused):
                return fast_layer_gradients(x_i, h0_i, dh_i, *weights, workspace=slice_ws[i], fused=use_fused)

            def split(one_slice=one_slice):
                parts = fast.map_batch_slices(one_slice, (x, h0, dh), threads)
                return [sum(grads) for grads in zip(*parts)]   # the weight gradients of the whole batch

            steps[name] = split
    if pool is not None and x.shape[0] > 1:
        def processes():
            parts = pool.map(fast_layer_gradients, (x, h0, dh), weights)
            return [sum(grads) for grads in zip(*parts)]

        steps["fast_processes"] = processes
    return steps


def floors(kind: str, N: int, T: int, H: int, D: int = INPUT_DIM) -> dict:
    """Closures for the per-step and the hoisted matrix products, in both layouts."""
    import numpy as np

    rng = np.random.default_rng(1)
    G = GATES[kind] * H

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    W, U = r(D, G), r(H, G)
    WT, UT = np.ascontiguousarray(W.T), np.ascontiguousarray(U.T)
    # rows layout: x_t (N, D), h (N, H), da (N, G); columns layout: their transposes.
    xs, h, da = r(T, N, D), r(N, H), r(N, G)
    xs_c, h_c, da_c = r(T, D, N), r(H, N), r(G, N)
    o_g, o_h, o_dw, o_du = np.empty((N, G), np.float32), np.empty((N, H), np.float32), \
        np.empty((D, G), np.float32), np.empty((H, G), np.float32)
    oc_g, oc_h = np.empty((G, N), np.float32), np.empty((H, N), np.float32)
    oc_dw, oc_du = np.empty((G, D), np.float32), np.empty((G, H), np.float32)
    X, dA, Hs = r(T * N, D), r(T * N, G), r(T * N, H)
    dA_c = r(G, T * N)
    o_xw, o_dw_all, o_du_all = np.empty((T * N, G), np.float32), np.empty((G, D), np.float32), \
        np.empty((G, H), np.float32)

    def recurrent_rows():
        for _ in range(T):
            np.matmul(h, U, out=o_g)
        for _ in range(T):
            np.matmul(da, UT, out=o_h)

    def recurrent_columns():
        for _ in range(T):
            np.matmul(UT, h_c, out=oc_g)
        for _ in range(T):
            np.matmul(U, da_c, out=oc_h)

    def per_step_rows():
        for t in range(T):
            np.matmul(xs[t], W, out=o_g)
            np.matmul(h, U, out=o_g)
        for t in range(T):
            np.matmul(da, UT, out=o_h)
            np.matmul(xs[t].T, da, out=o_dw)
            np.matmul(h.T, da, out=o_du)

    def per_step_columns():
        for t in range(T):
            np.matmul(WT, xs_c[t], out=oc_g)
            np.matmul(UT, h_c, out=oc_g)
        for t in range(T):
            np.matmul(U, da_c, out=oc_h)
            np.matmul(da_c, xs_c[t].T, out=oc_dw)
            np.matmul(da_c, h_c.T, out=oc_du)

    def hoisted_once():
        np.matmul(X, W, out=o_xw)
        np.matmul(dA_c, X, out=o_dw_all)
        np.matmul(dA_c, Hs, out=o_du_all)

    return {"recurrent_rows": recurrent_rows, "recurrent_columns": recurrent_columns,
            "per_step_rows": per_step_rows, "per_step_columns": per_step_columns, "hoisted_once": hoisted_once}


def bench_numpy(sizes: list, kinds: list, min_seconds: float, threads: int = 1, pool=None) -> list:
    rows = []
    for kind in kinds:
        for N, H, T in sizes:
            problem = numpy_problem(kind, N, T, H)
            fns = {**numpy_steps(kind, problem, threads, pool), **floors(kind, N, T, H)}
            # In blocks of 3, each after one untimed repetition. Timed one repetition at a time,
            # the split step followed a two-thread BLAS product whose idle thread was still
            # spinning, and its two Python threads lost a core to it (LSTM, batch 64, hidden
            # 256: 64 against 36 ms). A pause between blocks instead made every step slower.
            t = {name: v["median_s"] for name, v in
                 timed_round_robin(fns, min_repeats=6, min_seconds=min_seconds, block=3, untimed_first=True).items()}
            per_step = min(t["per_step_rows"], t["per_step_columns"])
            hoisted = t["hoisted_once"] + min(t["recurrent_rows"], t["recurrent_columns"])
            row = {"kind": kind, "N": N, "H": H, "T": T, "D": INPUT_DIM,
                   "clear_s": t["clear"], "fast_s": t["fast"], "per_step_floor_s": per_step,
                   "hoisted_floor_s": hoisted,
                   "fast_vs_per_step_floor": per_step / t["fast"], "fast_vs_hoisted_floor": hoisted / t["fast"],
                   "clear_vs_per_step_floor": per_step / t["clear"], "speedup_fast_over_clear": t["clear"] / t["fast"]}
            if "fast_split" in t:
                row.update(fast_split_s=t["fast_split"], split_vs_per_step_floor=per_step / t["fast_split"],
                           split_vs_hoisted_floor=hoisted / t["fast_split"])
            if "fast_processes" in t:
                row.update(fast_processes_s=t["fast_processes"],
                           processes_vs_per_step_floor=per_step / t["fast_processes"],
                           processes_vs_hoisted_floor=hoisted / t["fast_processes"])
            for name in ("fused", "fused_split"):
                if name in t:
                    row.update({f"{name}_s": t[name], f"{name}_vs_per_step_floor": per_step / t[name],
                                f"{name}_vs_hoisted_floor": hoisted / t[name]})
            rows.append(row)
            print(f"  numpy {kind:4s} N={N:<3d} H={H:<3d} T={T:<3d}  clear {t['clear'] * 1e3:8.2f} ms  "
                  f"fast {t['fast'] * 1e3:8.2f} ms  floors {per_step * 1e3:7.2f} / {hoisted * 1e3:7.2f} ms  "
                  f"efficiency {row['fast_vs_per_step_floor']:.2f} / {row['fast_vs_hoisted_floor']:.2f}"
                  + (f"  split {row['fast_split_s'] * 1e3:.2f} ms ({row['split_vs_per_step_floor']:.2f} / "
                     f"{row['split_vs_hoisted_floor']:.2f})" if "fast_split_s" in row else "")
                  + (f"  processes {row['fast_processes_s'] * 1e3:.2f} ms ({row['processes_vs_per_step_floor']:.2f} / "
                     f"{row['processes_vs_hoisted_floor']:.2f})" if "fast_processes_s" in row else "")
                  + "".join(f"  {name} {row[f'{name}_s'] * 1e3:.2f} ms ({row[f'{name}_vs_per_step_floor']:.2f} / "
                            f"{row[f'{name}_vs_hoisted_floor']:.2f})" for name in ("fused", "fused_split")
                            if f"{name}_s" in row), flush=True)
    return rows


TARGET = ("lstm", 64, 256, 50)  # the target size: kind, batch, hidden, length


def _spread(runs: list, keys) -> dict:
    """Mean, sd, min and max over the runs of each key: a target measurement's summary."""
    summary = {}
    for key in keys:
        values = [r[key] for r in runs]
        summary[key] = {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "min": min(values), "max": max(values)}
    return summary


def bench_target_repeats(repeats: int, min_seconds: float, threads: int, pool=None, size: tuple = TARGET) -> dict:
    """The target size measured `repeats` more times, each a full round-robin measurement of its
    own (steps and floors), so that the efficiencies' spread on this machine can be printed as
    mean ± sd beside the single measurement of the table."""
    kind, N, H, T = size
    runs = [bench_numpy([(N, H, T)], [kind], min_seconds, threads, pool)[0] for _ in range(repeats)]
    keys = [key for key in runs[0] if key.endswith("_floor")
            and key.split("_vs_")[0] in ("fast", "fused", "fused_split", "split", "processes")]
    return {"kind": kind, "N": N, "H": H, "T": T, "threads": threads, "repeats": repeats, "runs": runs,
            "summary": _spread(runs, keys)}


PAIRED_VARIANTS = ("fused", "fused_split")


def bench_target_paired(measurements: int, rounds: int, threads: int, size: tuple = TARGET, untimed: int = 2) -> dict:
    """The target size measured with each efficiency taken as a ratio within one round.

    `bench_target_repeats` times every variant of the table (about ten functions) in blocks,
    and divides the median floor by the median step: the floor and the step it is divided by
    were timed up to a second apart, on a machine whose speed drifts over seconds. Here only
    the per-step floor (both layouts) and the two fused steps are timed, each once per round
    after `untimed` untimed repetitions, back to back (a round lasts well under a second), and each
    round gives its own efficiencies: the round's floor (the faster layout) over each step's
    time. The order of the functions rotates from round to round, so that none always follows
    the same neighbour. A measurement is the median of `rounds` rounds' efficiencies; its
    summary gives their mean ± sd over the `measurements` measurements, as
    `bench_target_repeats` does for its own.

    Two untimed repetitions, not one: after a product on two threads, OpenBLAS's idle thread
    spins for a while (on the order of 0.1 s) before it sleeps, and the split step's two Python
    threads lose a core to it. One untimed split step (about 60 ms) did not outlast it: in three
    runs so measured the split step reached 0.65 to 0.70 of the floor, against about 0.78 in
    the round-robin runs, whose later repetitions of a block run after it has gone to sleep."""
    kind, N, H, T = size
    problem = numpy_problem(kind, N, T, H)
    available = numpy_steps(kind, problem, threads)
    steps = {name: available[name] for name in PAIRED_VARIANTS if name in available}
    floor_fns = {name: fn for name, fn in floors(kind, N, T, H).items() if name.startswith("per_step_")}
    runs = []
    for _ in range(measurements):
        per_round = {name: [] for name in steps}
        for seconds in _timed_rounds({**floor_fns, **steps}, rounds, untimed):
            floor = min(seconds[name] for name in floor_fns)
            for name in steps:
                per_round[name].append(floor / seconds[name])
        runs.append({f"{name}_vs_per_step_floor": statistics.median(values) for name, values in per_round.items()})
    return {"kind": kind, "N": N, "H": H, "T": T, "threads": threads, "method": "paired", "repeats": measurements,
            "rounds": rounds, "untimed_repetitions": untimed, "runs": runs, "summary": _spread(runs, runs[0])}


def _timed_rounds(functions: dict, rounds: int, untimed: int, blas_threads: dict | None = None):
    """Yield, per round, {name: seconds} with every function timed once, in an order that rotates
    from round to round, each after `untimed` untimed repetitions. blas_threads (optional):
    {name: BLAS threads} for the functions to run with another thread count than the process's;
    the limit is set before their untimed repetitions, so that its cost is not timed."""
    from contextlib import nullcontext

    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController() if blas_threads else None

    def limit(name):
        if not blas_threads or name not in blas_threads:
            return nullcontext()
        return controller.limit(limits=blas_threads[name], user_api="blas")

    for name, fn in functions.items():
        with limit(name):
            fn()                                        # warm-up (and Numba's compilation)
    names = list(functions)
    for r in range(rounds):
        seconds = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            with limit(name):
                for _ in range(untimed):                # pays for what the previous function left
                    functions[name]()
                t0 = time.perf_counter()
                functions[name]()
                seconds[name] = time.perf_counter() - t0
        yield seconds


SCALING_KEYS = ("fused_one_thread_vs_per_step_floor", "floor_speedup", "fused_speedup", "fused_split_speedup",
                "fused_vs_per_step_floor", "fused_split_vs_per_step_floor", "half_batch_work", "halves_together")
PARALLEL_KEYS = ("fused_parallel_one_thread_vs_per_step_floor", "fused_parallel_speedup",
                 "fused_parallel_vs_per_step_floor")


def bench_target_scaling(measurements: int, rounds: int, threads: int = 2, size: tuple = TARGET,
                         untimed: int = 2, parallel: bool = False) -> dict:
    """Why the target is harder at two threads than at one: the efficiency at `threads` threads
    taken apart, each factor a ratio within one round (as in `bench_target_paired`).

    Each round times the per-step floor (both layouts) and the fused step at one BLAS thread,
    and the floor, the fused step and the split fused step at `threads`. Its factors:
      fused_one_thread_vs_per_step_floor  e1 = floor(1) / fused(1), the efficiency on one core;
      floor_speedup                       floor(1) / floor(threads), what more cores give the products;
      fused_speedup, fused_split_speedup  fused(1) / fused(threads), fused(1) / split(threads);
    and the efficiencies at `threads`, floor(threads) / step(threads), which equal
    e1 * step speed-up / floor speed-up round by round: a step that speeds up less than its
    floor loses efficiency with every core it is given. The split step's speed-up is taken
    apart too, from the fused step on the split's first slice of the batch alone, at one thread
    (half(1)):
      half_batch_work   fused(1) / (slices * half(1)), above 1 where a slice costs less than its
                        share of the whole batch;
      halves_together   half(1) / split(threads), 1 where the slices running at once on their
                        own cores do not slow each other down;
    so that fused_split_speedup = slices * half_batch_work * halves_together. A measurement is
    each factor's median over `rounds` rounds.

    parallel=True (method "parallel"): the rounds also time `rnncourse.parallel`'s step on one
    and on `threads` threads of Numba's pool (par(1), par(threads)), giving
      fused_parallel_one_thread_vs_per_step_floor  floor(1) / par(1);
      fused_parallel_speedup                       par(1) / par(threads);
      fused_parallel_vs_per_step_floor             floor(threads) / par(threads)."""
    if threads < 2:
        raise ValueError(f"the scaling measurement compares one thread with more, got threads={threads}")
    kind, N, H, T = size
    problem = numpy_problem(kind, N, T, H)
    steps = numpy_steps(kind, problem, threads, parallel=parallel)
    floor_fns = {name: fn for name, fn in floors(kind, N, T, H).items() if name.startswith("per_step_")}
    # The fused step on the split step's first slice alone, the slice fast.map_batch_slices cuts.
    from rnncourse.fast import batch_bounds

    n_first = int(batch_bounds(N, threads)[1])
    first_slice = {**problem, **{key: problem[key][:n_first] for key in ("x", "h0", "dh")}}
    half = numpy_steps(kind, first_slice)["fused"]
    functions = {**{f"{name}@1": fn for name, fn in floor_fns.items()}, "fused@1": steps["fused"], "half@1": half,
                 **{f"{name}@n": fn for name, fn in floor_fns.items()}, "fused@n": steps["fused"],
                 "fused_split@n": steps["fused_split"]}
    keys = SCALING_KEYS
    if parallel:
        functions.update({"par@1": numpy_steps(kind, problem, 1, parallel=True)["fused_parallel"],
                          "par@n": steps["fused_parallel"]})
        keys = SCALING_KEYS + PARALLEL_KEYS
    one_thread = {name: 1 for name in functions if name.endswith("@1")}
    runs = []
    for _ in range(measurements):
        factors = {key: [] for key in keys}
        for s in _timed_rounds(functions, rounds, untimed, one_thread):
            floor_1 = min(s[f"{name}@1"] for name in floor_fns)
            floor_n = min(s[f"{name}@n"] for name in floor_fns)
            for key, value in zip(SCALING_KEYS, (floor_1 / s["fused@1"], floor_1 / floor_n,
                                                 s["fused@1"] / s["fused@n"], s["fused@1"] / s["fused_split@n"],
                                                 floor_n / s["fused@n"], floor_n / s["fused_split@n"],
                                                 s["fused@1"] / (threads * s["half@1"]), s["half@1"] / s["fused_split@n"])):
                factors[key].append(value)
            if parallel:
                for key, value in zip(PARALLEL_KEYS, (floor_1 / s["par@1"], s["par@1"] / s["par@n"],
                                                      floor_n / s["par@n"])):
                    factors[key].append(value)
        runs.append({key: statistics.median(values) for key, values in factors.items()})
    entry = {"kind": kind, "N": N, "H": H, "T": T, "threads": threads, "method": "parallel" if parallel else "scaling",
             "repeats": measurements, "rounds": rounds, "untimed_repetitions": untimed, "runs": runs,
             "summary": _spread(runs, keys)}
    if parallel:
        import numba

        entry["numba_threading_layer"] = numba.threading_layer()
    return entry


# ----------------------------------------------------------------------------- Keras
def keras_step(kind: str, problem: dict):
    """A compiled (tf.function) Keras training step on the same data, weights-only gradients."""
    import keras
    import tensorflow as tf

    from rnncourse.keras_bridge import set_keras_weights

    layer_class = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    N, T, D = problem["x"].shape
    H = problem["h0"].shape[1]
    layer = layer_class(H, return_sequences=True)
    layer.build((N, T, D))
    set_keras_weights(layer, problem["params"])
    x = tf.constant(problem["x"])
    upstream = tf.constant(problem["dh"])

    @tf.function
    def step(x, upstream):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) * upstream)
        return tape.gradient(loss, layer.trainable_variables)

    def run():
        for g in step(x, upstream):
            g.numpy()  # wait for the result

    return run


def numpy_against_keras(kind: str, N: int, H: int, T: int, min_seconds: float, threads: int = 1, pool=None,
                        splits: bool = True) -> dict:
    """One size: the fast path, the fused step (LSTM) and, with splits, the batch split over
    threads and over `pool`'s processes, each timed round-robin against a compiled Keras step;
    their times and their ratios to Keras's."""
    problem = numpy_problem(kind, N, T, H)
    steps = numpy_steps(kind, problem, threads, pool)
    fns = {"numpy_fast": steps["fast"], "keras": keras_step(kind, problem)}
    timed_steps = {"fast_split": "split", "fast_processes": "processes", "fused": "fused", "fused_split": "fused_split"}
    for step, name in timed_steps.items():
        if step in steps and (splits or step == "fused"):
            fns[f"numpy_{name}"] = steps[step]
    t = {name: v["median_s"] for name, v in
         timed_round_robin(fns, min_repeats=6, min_seconds=min_seconds, block=3, pause=0.05).items()}
    row = {"kind": kind, "N": N, "H": H, "T": T, "D": INPUT_DIM, "numpy_fast_s": t["numpy_fast"],
           "keras_s": t["keras"], "numpy_over_keras": t["numpy_fast"] / t["keras"]}
    for name in timed_steps.values():
        if f"numpy_{name}" in t:
            row.update({f"numpy_{name}_s": t[f"numpy_{name}"], f"{name}_over_keras": t[f"numpy_{name}"] / t["keras"]})
    return row


def bench_keras(sizes: list, kinds: list, min_seconds: float, threads: int = 1, pool=None) -> list:
    rows = []
    for kind in kinds:
        for N, H, T in sizes:
            row = numpy_against_keras(kind, N, H, T, min_seconds, threads, pool)
            rows.append(row)
            print(f"  keras {kind:4s} N={N:<3d} H={H:<3d} T={T:<3d}  numpy {row['numpy_fast_s'] * 1e3:8.2f} ms  "
                  f"keras {row['keras_s'] * 1e3:8.2f} ms  ratio {row['numpy_over_keras']:.2f}"
                  + (f"  split {row['split_over_keras']:.2f}" if "split_over_keras" in row else "")
                  + (f"  processes {row['processes_over_keras']:.2f}" if "processes_over_keras" in row else "")
                  + "".join(f"  {name} {row[f'{name}_over_keras']:.2f}" for name in ("fused", "fused_split")
                            if f"{name}_over_keras" in row), flush=True)
    return rows


# Does Keras catch up on long sequences? The same comparison at one size per layer as the
# sequence grows (and at a small LSTM, where fixed costs per step weigh most).
LENGTHS = (25, 50, 100, 200, 400, 800)
LENGTH_SHAPES = (("lstm", 64, 256), ("lstm", 16, 64), ("gru", 64, 256), ("rnn", 64, 256))
QUICK_LENGTHS = (5, 10)


def bench_lengths(min_seconds: float, threads: int = 1, lengths=LENGTHS, shapes=LENGTH_SHAPES) -> list:
    """One float32 training step of the fast path (and, for the LSTM, the fused step) against a
    compiled Keras step, for each layer, batch N and hidden size H in `shapes`, at every length
    in `lengths`; timed as `bench_keras` times them. One row per (layer, N, H, T)."""
    rows = []
    for kind, N, H in shapes:
        for T in lengths:
            row = dict(numpy_against_keras(kind, N, H, T, min_seconds, threads, splits=False), threads=threads)
            rows.append(row)
            print(f"  lengths {kind:4s} N={N:<3d} H={H:<3d} T={T:<4d} numpy {row['numpy_fast_s'] * 1e3:8.2f} ms  "
                  f"keras {row['keras_s'] * 1e3:8.2f} ms  ratio {row['numpy_over_keras']:.2f}"
                  + (f"  fused {row['fused_over_keras']:.2f}" if "fused_over_keras" in row else ""), flush=True)
    return rows


# ------------------------------------------------- batched training vs one sequence at a time
def min_char_style_loss_and_grads(params: dict, inputs, targets, h_prev):
    """The character model of `rnncourse.charmodel.CharRNN`, written the way min-char-rnn writes
    it: one sequence, one character at a time, vectors instead of matrices, a Python loop over
    the characters for the forward pass and another for BPTT. Same parameters (Keras layout),
    same loss (mean cross-entropy per character), same gradients; tests/test_bench.py checks
    that against CharRNN.loss_and_grads.

    inputs, targets: sequences of character ids; h_prev: (H,) state. Returns (loss, grads, h).
    """
    import numpy as np

    W, U, b = params["rnn/kernel"], params["rnn/recurrent_kernel"], params["rnn/bias"]
    Wy, by = params["dense/kernel"], params["dense/bias"]
    V = W.shape[0]
    xs, hs, ps = {}, {-1: h_prev}, {}
    loss = 0.0
    for t, (i, j) in enumerate(zip(inputs, targets)):
        xs[t] = np.zeros(V)
        xs[t][i] = 1.0
        hs[t] = np.tanh(xs[t] @ W + hs[t - 1] @ U + b)
        logits = hs[t] @ Wy + by
        e = np.exp(logits - logits.max())
        ps[t] = e / e.sum()
        loss -= np.log(ps[t][j])
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dh_next = np.zeros_like(h_prev)
    n = len(inputs)
    for t in reversed(range(n)):
        dlogits = ps[t].copy()
        dlogits[targets[t]] -= 1.0
        dlogits /= n                                        # the loss is a mean over characters
        grads["dense/kernel"] += np.outer(hs[t], dlogits)
        grads["dense/bias"] += dlogits
        dz = (dlogits @ Wy.T + dh_next) * (1.0 - hs[t] * hs[t])
        grads["rnn/kernel"] += np.outer(xs[t], dz)
        grads["rnn/recurrent_kernel"] += np.outer(hs[t - 1], dz)
        grads["rnn/bias"] += dz
        dh_next = dz @ U.T
    return loss / n, grads, hs[n - 1]


class MinCharStyleModel:
    """Adapter: CharRNN's parameters and interface around the per-character loop, batch 1."""

    def __init__(self, model):
        self.model, self.params = model, model.params

    def initial_state(self, batch_size: int):
        return self.model.initial_state(batch_size)

    def loss_and_grads(self, inputs, targets, h0):
        loss, grads, h = min_char_style_loss_and_grads(self.params, inputs[0], targets[0], h0[0])
        return loss, grads, h[None]

    def forward(self, inputs, targets, h0=None):
        return self.model.forward(inputs, targets, h0)


def _setup_model(s: dict, vocab_size: int, hidden: int):
    """The model a batching setup trains: chapter 3's CharRNN (seed 0), split over threads or
    processes, or run through the per-character loop, when the setup says so."""
    import numpy as np

    from rnncourse.charmodel import CharRNN, SplitBatch

    model = CharRNN(vocab_size, hidden, seed=0, fast=s["fast"], dtype=np.dtype(s.get("dtype", "float64")))
    if s.get("threads", 1) > 1:
        model = SplitBatch(model, s["threads"], processes=s.get("processes", False))
    return MinCharStyleModel(model) if s.get("per_character") else model


def _close(model) -> None:
    """Stop a setup's worker processes, if it has any (SplitBatch with processes=True)."""
    if hasattr(model, "close"):
        model.close()


class _TrainingSteps:
    """A setup's training, one update at a time: `next_batch()` gives the next window of every
    stream (from the top of the text, with a zero state, when a pass ends); `train(batch)`
    computes the loss and gradients, clips them to a global norm of 5 and applies the update."""

    def __init__(self, model, s: dict, train_ids, optimizer):
        self.model, self.s, self.train_ids, self.optimizer = model, s, train_ids, optimizer
        self.batches, self.h = iter(()), None

    def next_batch(self):
        from rnncourse.data import stream_batches

        batch = next(self.batches, None)
        if batch is None:
            self.batches = stream_batches(self.train_ids, self.s["batch"], self.s["seq"])
            batch, self.h = next(self.batches), self.model.initial_state(self.s["batch"])
        return batch

    def train(self, batch) -> None:
        from rnncourse.optim import clip_by_global_norm

        _, grads, self.h = self.model.loss_and_grads(*batch, self.h)
        self.optimizer.step(self.model.params, clip_by_global_norm(grads, 5.0)[0])


def _train_for(seconds: float, model, s: dict, train_ids, val_ids, check_at_chars: int | None = None) -> dict:
    """Train `model` for `seconds` of wall time (evaluations not counted); return its curve.

    The held-out loss is measured 12 times at even intervals of training time, and once more
    when the characters processed first reach `check_at_chars`."""
    from rnncourse.train import evaluate

    steps = _TrainingSteps(model, s, train_ids, s["optimizer"])
    curve = [{"chars": 0, "seconds": 0.0, "val_loss": evaluate(model, val_ids)}]
    trained, chars, next_check, check_every = 0.0, 0, 0.0, seconds / 12
    while trained < seconds:
        batch = steps.next_batch()
        t0 = time.perf_counter()
        steps.train(batch)
        trained += time.perf_counter() - t0
        chars += batch[0].size
        if trained >= next_check or (check_at_chars and chars >= check_at_chars > chars - batch[0].size):
            curve.append({"chars": chars, "seconds": trained, "val_loss": evaluate(model, val_ids)})
            if trained >= next_check:
                next_check += check_every
    curve.append({"chars": chars, "seconds": trained, "val_loss": evaluate(model, val_ids)})
    return {"chars_per_second": chars / trained, "curve": curve, "optimizer": type(s["optimizer"]).__name__,
            **{k: v for k, v in s.items() if k != "optimizer"}}


def _fresh_training_steps(s: dict, vocab_size: int, hidden: int, train_ids) -> _TrainingSteps:
    """A setup's model, new, with its own Adam (learning rate 3e-3), ready to train step by step."""
    from rnncourse.optim import Adam

    return _TrainingSteps(_setup_model(s, vocab_size, hidden), s, train_ids, Adam(learning_rate=3e-3))


def throughput_in_blocks(setups: dict, vocab_size: int, hidden: int, train_ids, seconds: float,
                         rounds: int = 5) -> dict:
    """Characters per second of each setup's training step (loss and gradients, clipping, the
    optimizer's update), measured in blocks: each setup trains for a block of consecutive steps,
    the setups take turns, the order is rotated from one round to the next, and `rounds` rounds
    take about `seconds` in all. Fresh models; the speed does not depend on the weights.

    Consecutive steps, because that is how a setup trains. The first version of this function
    timed one step of each setup in turn, and every step then began with caches that the other
    setups had just filled with their own arrays: that slowed the per-character loop by about an
    eighth, the batched steps hardly at all, and so inflated the speed-ups. The first step of
    each block is run untimed for the same reason. Turns and rotation, because a shared
    machine's speed drifts: a slow spell then hits every setup alike. Each setup runs with its
    own number of BLAS threads (`blas_threads`, default 1). The rate is that of the median
    step; the rate of each round is kept too, for the spread of the speed-ups."""
    from threadpoolctl import threadpool_limits

    steps = {}
    for name, s in setups.items():
        with threadpool_limits(limits=s.get("blas_threads", 1), user_api="blas"):
            steps[name] = _fresh_training_steps(s, vocab_size, hidden, train_ids)
    block_seconds = seconds / (rounds * len(setups))
    times = {name: [] for name in setups}
    per_round = {name: [] for name in setups}
    names = list(setups)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            s, training = setups[name], steps[name]
            block = []
            with threadpool_limits(limits=s.get("blas_threads", 1), user_api="blas"):
                training.train(training.next_batch())      # untimed: it finds the caches cold
                started = time.perf_counter()
                while len(block) < 3 or time.perf_counter() - started < block_seconds:
                    batch = training.next_batch()
                    t0 = time.perf_counter()
                    training.train(batch)
                    block.append(time.perf_counter() - t0)
            times[name] += block
            per_round[name].append(s["batch"] * s["seq"] / statistics.median(block))
    for training in steps.values():
        _close(getattr(training, "model", None))
    return {name: {"chars_per_second": setups[name]["batch"] * setups[name]["seq"] / statistics.median(times[name]),
                   "per_round": per_round[name], "steps_timed": len(times[name]),
                   "blas_threads": setups[name].get("blas_threads", 1)} for name in setups}


def interleaving_cost(setups: dict, vocab_size: int, hidden: int, train_ids, seconds: float) -> dict:
    """The same setups' characters per second measured two ways, for `seconds` each: one step of
    each in turn (`timed_round_robin`, what this benchmark first did), and in blocks of
    consecutive steps (`throughput_in_blocks`). The difference is what a step pays for finding
    the caches full of the other setups' arrays."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        steps = {name: _fresh_training_steps(s, vocab_size, hidden, train_ids) for name, s in setups.items()}
        timed = timed_round_robin({name: (lambda t=t: t.train(t.next_batch())) for name, t in steps.items()},
                                  min_seconds=seconds, max_repeats=1_000_000)
    chars = {name: s["batch"] * s["seq"] for name, s in setups.items()}
    blocks = throughput_in_blocks(setups, vocab_size, hidden, train_ids, seconds, rounds=4)
    return {"one step of each in turn": {name: chars[name] / t["median_s"] for name, t in timed.items()},
            "in blocks of consecutive steps": {name: r["chars_per_second"] for name, r in blocks.items()}}


def bench_batching(seconds: float, hidden: int = 128) -> dict:
    """Characters per second, and the held-out loss reached, of the batched character model
    (32 or 128 streams of 64 characters, fast path, float64 and float32) against a loop in the
    style of min-char-rnn (one stream of 25 characters, one character at a time:
    `min_char_style_loss_and_grads`), each trained for the same wall time on the same text. The
    held-out loss is measured at checkpoints (not timed), so the two can be compared after the
    same number of characters and after the same time. All use Adam with learning rate 3e-3 and
    gradients clipped to a global norm of 5, so that only the batching differs (min-char-rnn's
    own Adagrad with learning rate 0.1 diverges within ten updates from Keras's initial weights,
    which are larger than min-char-rnn's).

    The characters per second that the speed-ups use are measured separately, the setups
    taking turns in blocks of consecutive steps (`throughput_in_blocks`), so that a drift in the
    machine's speed between the training runs does not enter the ratios. Each speed-up is taken
    against the per-character loop at its best, whichever of its two BLAS thread counts was the
    faster; per round as well, for a mean and standard deviation over the rounds. Setups run
    with one BLAS thread unless they say otherwise (`blas_threads`): the two-thread setups show
    what a second core adds to each side."""
    from threadpoolctl import threadpool_limits

    from rnncourse.data import CharVocab, load_shakespeare, shakespeare_play_names
    from rnncourse.optim import Adam

    plays = shakespeare_play_names()
    train_text = load_shakespeare([p for p in plays if p != "hamlet"])
    val_text = load_shakespeare(["hamlet"])
    vocab = CharVocab.from_text(train_text + val_text)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)[:20_000]
    setups = {
        "one sequence (min-char-rnn style)": dict(batch=1, seq=25, fast=False, per_character=True),
        "one sequence, BLAS on 2 threads": dict(batch=1, seq=25, fast=False, per_character=True, blas_threads=2),
        "batched, 32 x 64, clear code": dict(batch=32, seq=64, fast=False),
        "batched, 32 x 64 (chapter 3's setting)": dict(batch=32, seq=64, fast=True),
        "batched, 32 x 64, BLAS on 2 threads": dict(batch=32, seq=64, fast=True, blas_threads=2),
        "batched, 128 x 64": dict(batch=128, seq=64, fast=True),
        "batched, 32 x 64, float32": dict(batch=32, seq=64, fast=True, dtype="float32"),
        "batched, 32 x 64, split over 2 threads": dict(batch=32, seq=64, fast=True, threads=2),
        "batched, 32 x 64, split over 2 processes": dict(batch=32, seq=64, fast=True, threads=2, processes=True),
    }
    for s in setups.values():
        s["optimizer"] = Adam(learning_rate=3e-3)
    results = {}
    for name, s in setups.items():
        with threadpool_limits(limits=s.get("blas_threads", 1), user_api="blas"):
            model = _setup_model(s, vocab.size, hidden)
            # every batched run is also scored when it has seen as many characters as the first run saw in all
            baseline_chars = next(iter(results.values()))["curve"][-1]["chars"] if results else None
            results[name] = _train_for(seconds, model, s, train_ids, val_ids, baseline_chars)
            _close(model)
        print(f"  batching: {name}: {results[name]['chars_per_second']:,.0f} chars/s, held-out loss "
              f"{results[name]['curve'][-1]['val_loss']:.3f} after {results[name]['curve'][-1]['chars']:,} chars",
              flush=True)
    rates = throughput_in_blocks(setups, vocab.size, hidden, train_ids, seconds * len(setups) / 8)
    for name, rate in rates.items():
        print(f"  batching, in blocks: {name}: {rate['chars_per_second']:,.0f} chars/s", flush=True)
    pair = ("one sequence (min-char-rnn style)", "batched, 32 x 64 (chapter 3's setting)")
    interleaving = interleaving_cost({name: setups[name] for name in pair}, vocab.size, hidden, train_ids, seconds / 3)
    for how, rows in interleaving.items():
        print(f"  batching, {how}: " + ", ".join(f"{n}: {r:,.0f} chars/s" for n, r in rows.items()), flush=True)
    loops = [name for name, s in setups.items() if s.get("per_character")]
    best_loop = max(loops, key=lambda name: rates[name]["chars_per_second"])
    best_loop_per_round = [max(rounds) for rounds in zip(*(rates[name]["per_round"] for name in loops))]
    one_name = loops[0]
    one = results[one_name]
    comparisons = {}
    for name, batched in results.items():
        if name in loops:
            continue
        # The batched model's loss at the first checkpoint with at least as many characters as the
        # one-sequence loop processed in all (_train_for scores it there).
        same = next(c for c in batched["curve"] if c["chars"] >= one["curve"][-1]["chars"])
        per_round = [b / o for b, o in zip(rates[name]["per_round"], best_loop_per_round)]
        comparisons[name] = {
            "speedup_chars_per_second": rates[name]["chars_per_second"] / rates[best_loop]["chars_per_second"],
            "speedup_per_round": per_round,
            "speedup_mean": statistics.mean(per_round), "speedup_sd": statistics.stdev(per_round),
            "speedup_in_the_training_runs": batched["chars_per_second"] / max(results[n]["chars_per_second"]
                                                                              for n in loops),
            "same_chars": {"chars": one["curve"][-1]["chars"], "batched_chars": same["chars"],
                           "one_sequence": one["curve"][-1]["val_loss"], "batched": same["val_loss"]},
            "same_time": {"seconds": seconds, "one_sequence": one["curve"][-1]["val_loss"],
                          "batched": batched["curve"][-1]["val_loss"]}}
    return {"setups": results, "baseline": one_name, "best_loop": best_loop, "comparisons": comparisons,
            "in_blocks": rates, "interleaving": interleaving, "hidden": hidden, "seconds_each": seconds,
            "val_chars": int(val_ids.size)}


# ------------------------------------------------------------------ hot spots, before and after
def bench_hot_spots() -> dict:
    """Hot spots that profiles of the first fast path showed (an LSTM step, and chapter 3's
    character-model step: 32 x 64 characters, hidden 128, float64), each timed as it was
    ("before") and as it is ("after"), on the same data, BLAS on one thread."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from rnncourse import fast
    from rnncourse.charmodel import CharRNN
    from rnncourse.layers import one_hot

    rng = np.random.default_rng(0)
    N, T, V, H = 32, 64, 65, 128
    ids = rng.integers(0, V, (N, T + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    clear, quick = CharRNN(V, H, seed=0), CharRNN(V, H, seed=0, fast=True)
    p = quick.params
    ids_tm = np.ascontiguousarray(inputs.T)
    states = np.empty((T + 1, N, H))
    rows, row_ids = rng.standard_normal((N * T, H)), inputs.ravel()

    def one_hot_fast_step():  # the first fast path: one-hot inputs through a matrix product
        x = one_hot(inputs, V, np.float64)
        h, cache = fast.rnn_forward_fast(x, np.zeros((N, H)), p["rnn/kernel"], p["rnn/recurrent_kernel"],
                                         p["rnn/bias"])
        fast.rnn_backward_fast(rng_dh, cache, input_gradient=False)

    def ids_fast_step():
        h, cache = fast.rnn_forward_ids_fast(inputs, np.zeros((N, H)), p["rnn/kernel"], p["rnn/recurrent_kernel"],
                                             p["rnn/bias"])
        fast.rnn_backward_fast(rng_dh, cache)

    def add_at():
        out = np.zeros((V, H))
        np.add.at(out, row_ids, rows)

    rng_dh = rng.standard_normal((N, T, H))
    lstm_problem = numpy_problem("lstm", 64, 50, 256)
    lx, lh0, lp, ldh = lstm_problem["x"], lstm_problem["h0"], lstm_problem["params"], lstm_problem["dh"]
    lws = fast.Workspace()

    def lstm_fresh():
        fast.lstm_backward_fast(ldh, fast.lstm_forward_fast(lx, lh0, lh0, **lp)[2], input_gradient=False)

    def lstm_reused():
        fast.lstm_backward_fast(ldh, fast.lstm_forward_fast(lx, lh0, lh0, **lp, workspace=lws)[2],
                                input_gradient=False)

    cases = {
        "LSTM step (64 x 50, hidden 256, float32): fresh arrays every call -> a reused Workspace": (
            lstm_fresh, lstm_reused),
        "character model, whole training step: step-by-step code -> fast path": (
            lambda: clear.loss_and_grads(inputs, targets), lambda: quick.loss_and_grads(inputs, targets)),
        "RNN layer, one-hot input product -> row lookup (forward + backward)": (one_hot_fast_step, ids_fast_step),
        "input lookup: np.take(out=..., mode='raise') -> mode='wrap' (raise copies out)": (
            lambda: np.take(p["rnn/kernel"], ids_tm, axis=0, out=states[1:]),
            lambda: np.take(p["rnn/kernel"], ids_tm, axis=0, out=states[1:], mode="wrap")),
        "weight rows summed by id: np.add.at -> sort + np.add.reduceat": (
            add_at, lambda: fast._sum_rows_by_id(rows, row_ids, V)),
    }
    results = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, (before, after) in cases.items():
            t = timed_round_robin({"before": before, "after": after}, min_repeats=15, min_seconds=1.0)
            results[name] = {"before_s": t["before"]["median_s"], "after_s": t["after"]["median_s"],
                             "speedup": t["before"]["median_s"] / t["after"]["median_s"]}
            print(f"  hot spot: {name}: {t['before']['median_s'] * 1e3:.2f} -> {t['after']['median_s'] * 1e3:.2f} ms",
                  flush=True)
    return results


# ------------------------------------------------- the first fast path against the current one
# The commit whose fast path the first full benchmark run measured. Its modules are read from
# git and imported beside the current ones, so that the second round of changes is timed
# against the first in the same run, not against numbers from another day.
FIRST_FAST_PATH = "4586d13"


def module_at_commit(module: str, commit: str):
    """rnncourse.<module> as it was at `commit`, imported beside the current package; None
    without git. The whole package is read from git into a temporary folder as a package of
    another name (rnncourse_at_<commit>), so the old module's relative imports load the other
    modules as they were at that commit too: the old `charmodel` runs on the old `fast`."""
    import importlib
    import tarfile
    import tempfile

    package = f"rnncourse_at_{commit}"
    if package not in sys.modules:
        try:
            archive = subprocess.run(["git", "archive", "--format=tar", commit, "rnncourse"], cwd=ROOT,
                                     capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        folder = Path(tempfile.mkdtemp())
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        (folder / "rnncourse").rename(folder / package)
        sys.path.insert(0, str(folder))
    return importlib.import_module(f"{package}.{module}")


def minor_page_faults(fn, calls: int = 10) -> float | None:
    """Minor page faults per call of fn (after one warm-up call): each is the operating system
    handing the process a fresh 4 KiB page that it has just touched for the first time."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


FRESH_PROCESS_STEP = """
import json, sys, time
sys.path[:0] = [sys.argv[2], sys.argv[3]]
import numpy as np
from threadpoolctl import threadpool_limits
import bench
if sys.argv[1] == "before":
    CharRNN = bench.module_at_commit("charmodel", bench.FIRST_FAST_PATH).CharRNN
else:
    from rnncourse.charmodel import CharRNN
ids = np.random.default_rng(0).integers(0, 65, (32, 65))
model = CharRNN(65, 128, seed=0, fast=True)
step = lambda: model.loss_and_grads(ids[:, :-1], ids[:, 1:])
with threadpool_limits(limits=1, user_api="blas"):
    faults = bench.minor_page_faults(step, calls=20)
    times = []
    for _ in range(int(sys.argv[4])):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
print(json.dumps({"faults": faults, "median_s": sorted(times)[len(times) // 2]}))
"""


def character_step_in_fresh_processes(rounds: int = 3, steps: int = 60) -> dict:
    """Chapter 3's character-model step, before and after, each in a fresh Python process,
    alternating `rounds` times: whether a fresh array costs page faults depends on what the
    process allocated and freed before (glibc serves large arrays straight from the operating
    system until a large free raises its threshold), so a process that has run nothing else
    shows what a short training script meets."""
    results = {"before": [], "after": []}
    for _ in range(rounds):
        for which in results:
            run = subprocess.run([sys.executable, "-c", FRESH_PROCESS_STEP, which, str(ROOT), str(ROOT / "scripts"),
                                  str(steps)], capture_output=True, text=True, check=True)
            results[which].append(json.loads(run.stdout.strip().splitlines()[-1]))
    return {which: {"median_s": statistics.median(r["median_s"] for r in runs),
                    "faults": statistics.median(r["faults"] for r in runs)}
            for which, runs in results.items()}


def bench_since_first_fast_path(quick: bool = False) -> dict:
    """The LSTM and GRU training steps (batch 64, hidden 256, length 50, float32, each with a
    Workspace), with two BLAS threads and with one, and chapter 3's character-model step
    (32 x 64, hidden 128, float64, one thread), as the fast path of FIRST_FAST_PATH ran them and
    as they run now, timed round-robin in one run; the LSTM and GRU also against their per-step
    floor, and each with the page faults it causes per call."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from rnncourse import fast
    from rnncourse.charmodel import CharRNN

    old_fast, old_char = module_at_commit("fast", FIRST_FAST_PATH), module_at_commit("charmodel", FIRST_FAST_PATH)
    if old_fast is None or old_char is None:
        return {"commit": FIRST_FAST_PATH, "rows": [], "note": "git history not available"}
    N, T, H = (8, 5, 16) if quick else (64, 50, 256)
    rows = []
    for threads in (2, 1):
        with threadpool_limits(limits=threads, user_api="blas"):
            for kind in ("lstm", "gru"):
                problem = numpy_problem(kind, N, T, H)
                x, h0, p, dh = problem["x"], problem["h0"], problem["params"], problem["dh"]

                def step(module, ws):
                    if kind == "lstm":
                        return lambda: module.lstm_backward_fast(
                            dh, module.lstm_forward_fast(x, h0, h0, **p, workspace=ws)[2], input_gradient=False)
                    return lambda: module.gru_backward_fast(
                        dh, module.gru_forward_fast(x, h0, **p, workspace=ws)[1], input_gradient=False)

                fns = {"before": step(old_fast, old_fast.Workspace()), "after": step(fast, fast.Workspace())}
                floor = floors(kind, N, T, H)
                fns.update(per_step_rows=floor["per_step_rows"], per_step_columns=floor["per_step_columns"])
                t = {k: v["median_s"] for k, v in timed_round_robin(fns, min_seconds=0.05 if quick else 3.0).items()}
                per_step = min(t["per_step_rows"], t["per_step_columns"])
                rows.append({"step": f"{kind.upper()} {N} x {T}, hidden {H}, float32", "threads": threads,
                             "before_s": t["before"], "after_s": t["after"], "per_step_floor_s": per_step,
                             "efficiency_before": per_step / t["before"], "efficiency_after": per_step / t["after"],
                             "faults_before": minor_page_faults(fns["before"]),
                             "faults_after": minor_page_faults(fns["after"])})
            if threads != 1:
                continue  # the character step is compared at one BLAS thread (bench_batching times two as well)
            rng = np.random.default_rng(0)
            V, CN, CT, CH = 65, 32, 64, 128
            ids = rng.integers(0, V, (CN, CT + 1))
            before_model, after_model = old_char.CharRNN(V, CH, seed=0, fast=True), CharRNN(V, CH, seed=0, fast=True)
            fns = {"before": lambda: before_model.loss_and_grads(ids[:, :-1], ids[:, 1:]),
                   "after": lambda: after_model.loss_and_grads(ids[:, :-1], ids[:, 1:])}
            t = {k: v["median_s"] for k, v in timed_round_robin(fns, min_seconds=0.05 if quick else 3.0).items()}
            rows.append({"step": f"character model {CN} x {CT}, hidden {CH}, float64", "threads": threads,
                         "before_s": t["before"], "after_s": t["after"],
                         "faults_before": minor_page_faults(fns["before"]),
                         "faults_after": minor_page_faults(fns["after"])})
    fresh = character_step_in_fresh_processes(rounds=1 if quick else 3, steps=5 if quick else 60)
    rows.append({"step": "character model, each version in a fresh process", "threads": 1,
                 "before_s": fresh["before"]["median_s"], "after_s": fresh["after"]["median_s"],
                 "faults_before": fresh["before"]["faults"], "faults_after": fresh["after"]["faults"]})
    for row in rows:
        row["speedup"] = row["before_s"] / row["after_s"]
        print(f"  since {FIRST_FAST_PATH}: {row['step']}, {row['threads']} thread(s): {row['before_s'] * 1e3:.2f} -> "
              f"{row['after_s'] * 1e3:.2f} ms" + (f", efficiency {row['efficiency_before']:.2f} -> "
                                                  f"{row['efficiency_after']:.2f}" if "efficiency_after" in row else "")
              + f", page faults per call {row['faults_before']} -> {row['faults_after']}", flush=True)
    return {"commit": FIRST_FAST_PATH, "rows": rows}


# ---------------------------------------------------------------- the BLAS kernel OpenBLAS picks
GEMM_SNIPPET = """
import json, time, numpy as np
from threadpoolctl import threadpool_info
r = np.random.default_rng(0)
out = {"architecture": [i.get("architecture") for i in threadpool_info() if i.get("user_api") == "blas"]}
for name, (m, k, n) in {"per-step h U (64x256 @ 256x1024)": (64, 256, 1024),
                        "hoisted X W (3200x128 @ 128x1024)": (3200, 128, 1024),
                        "hoisted dA H (1024x3200 @ 3200x256)": (1024, 3200, 256)}.items():
    a, b = r.standard_normal((m, k)).astype(np.float32), r.standard_normal((k, n)).astype(np.float32)
    a @ b
    ts = []
    for _ in range(40):
        t0 = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t0)
    out[name] = 2 * m * k * n / sorted(ts)[len(ts) // 2] / 1e9
print(json.dumps(out))
"""


def bench_fusion_choices(min_seconds: float = 1.0) -> dict:
    """The measurements behind the fused LSTM's design (`rnncourse.fused`), float32, one BLAS
    thread, at the target size (batch 64, hidden 256, 50 steps):
    * `tanh`: NumPy's `np.tanh` over one step's gate block (4H, N) against a Numba loop that
      calls `math.tanh` once per number, and against the fused LSTM's rational tanh
      (`fused.tanh32`);
    * the forward element-wise work over 50 steps (everything but the products): the fast
      path's NumPy calls, the float64 fused version (NumPy's tanh around one loop) and the
      float32 one (one loop with the rational tanh);
    * the backward loop over 50 steps as `rnncourse.fused` writes it (into the whole (4H, T, N)
      gradient array, the step an index; the mask a multiplication by 0 or 1), against the
      same loop writing into the step's slice da[:, t], and against a branch per example;
    * the fast path's element-wise backward work for the same 50 steps, for scale."""
    import math

    import numpy as np
    from numba import njit
    from threadpoolctl import threadpool_limits

    from rnncourse import fused

    @njit(nogil=True, boundscheck=False)
    def tanh_loop(a):
        for j in range(a.shape[0]):
            for k in range(a.shape[1]):
                a[j, k] = math.tanh(a[j, k])

    @njit(nogil=True, boundscheck=False)
    def step_into_slice(dh_arriving, dh_next, dc, gates, tanh_c, c_prev, da_t, dh_t, keep, one):
        H, N = dh_next.shape
        for j in range(H):
            for k in range(N):
                dh = dh_arriving[j, k] + dh_next[j, k]
                dh_t[j, k] = dh
                o, i, f, g = gates[j, k], gates[H + j, k], gates[2 * H + j, k], gates[3 * H + j, k]
                tc = tanh_c[j, k]
                w = keep[k]
                dc_t = dc[j, k] + (one - tc * tc) * o * dh
                da_t[j, k] = (one - o) * o * w * tc * dh
                da_t[H + j, k] = (one - i) * i * w * g * dc_t
                da_t[2 * H + j, k] = (one - f) * f * w * c_prev[j, k] * dc_t
                da_t[3 * H + j, k] = (one - g * g) * w * i * dc_t
                dc[j, k] = dc_t * f if w else dc[j, k]

    @njit(nogil=True, boundscheck=False)
    def step_with_branch(t, dh_arriving, dh_next, dc, gates, tanh_c, c_prev, da, dh_t, padded, one):
        H, N = dh_next.shape
        for j in range(H):
            for k in range(N):
                dh = dh_arriving[j, k] + dh_next[j, k]
                dh_t[j, k] = dh
                if padded[k]:
                    for gate in range(4):
                        da[gate * H + j, t, k] = 0
                    continue
                o, i, f, g = gates[j, k], gates[H + j, k], gates[2 * H + j, k], gates[3 * H + j, k]
                tc = tanh_c[j, k]
                dc_t = dc[j, k] + (one - tc * tc) * o * dh
                da[j, t, k] = (one - o) * o * tc * dh
                da[H + j, t, k] = (one - i) * i * g * dc_t
                da[2 * H + j, t, k] = (one - f) * f * c_prev[j, k] * dc_t
                da[3 * H + j, t, k] = (one - g * g) * i * dc_t
                dc[j, k] = dc_t * f

    _, N, H, T = TARGET
    rng = np.random.default_rng(3)
    f32, one = np.float32, np.float32(1)

    def r(*shape):
        return rng.random(shape, dtype=f32)

    block = r(4 * H, N)
    gates, tanh_c, cells, dh_fm = r(T, 4 * H, N), r(T, H, N), r(T + 1, H, N), r(T, H, N)
    da, dc, dh_next, dh_t = np.empty((4 * H, T, N), f32), r(H, N), r(H, N), np.empty((H, N), f32)
    keep, padded = np.ones((T, N), f32), np.zeros((T, N), bool)

    def whole_array():
        for t in range(T - 1, -1, -1):
            fused._step_backward(t, dh_fm[t], dh_next, dc, gates[t], tanh_c[t], cells[t], da, dh_t, keep[t], one)

    def into_slice():
        for t in range(T - 1, -1, -1):
            step_into_slice(dh_fm[t], dh_next, dc, gates[t], tanh_c[t], cells[t], da[:, t], dh_t, keep[t], one)

    def with_branch():
        for t in range(T - 1, -1, -1):
            step_with_branch(t, dh_fm[t], dh_next, dc, gates[t], tanh_c[t], cells[t], da, dh_t, padded[t], one)

    recurrent, written, half = r(4 * H, N), np.empty((H, N), f32), f32(0.5)
    # fresh copies for the forward loops, which overwrite their gates and cells
    gates_in, cells_out, tanh_c_out, states_out = gates.copy(), cells.copy(), tanh_c.copy(), r(H, T + 1, N)

    def forward_numpy_calls():  # the element-wise calls of fast.lstm_forward_fast's loop (no mask)
        for t in range(T):
            a = gates_in[t]
            a += recurrent
            np.tanh(a, out=a)
            sig = a[:3 * H]
            sig *= 0.5
            sig += 0.5
            np.multiply(a[2 * H:3 * H], cells_out[t], out=cells_out[t + 1])
            np.multiply(a[H:2 * H], a[3 * H:], out=written)
            cells_out[t + 1] += written
            np.tanh(cells_out[t + 1], out=tanh_c_out[t])
            np.multiply(a[:H], tanh_c_out[t], out=states_out[:, t + 1])

    def forward_numpy_tanh_and_loop():  # fused.lstm_forward_fused's float64 loop body
        for t in range(T):
            a = gates_in[t]
            a += recurrent
            np.tanh(a, out=a)
            fused._cell_update(a, cells_out[t], cells_out[t + 1], keep[t], half)
            np.tanh(cells_out[t + 1], out=tanh_c_out[t])
            np.multiply(a[:H], tanh_c_out[t], out=states_out[:, t + 1])

    def forward_one_loop():  # fused.lstm_forward_fused's float32 loop body
        for t in range(T):
            fused._step_forward32(t, recurrent, gates_in, cells_out, tanh_c_out, keep[t])
            np.multiply(gates_in[t, :H], tanh_c_out[t], out=states_out[:, t + 1])

    # Into another array: written in place, the loop would not vectorise (it checks whether its
    # input and output overlap, and they do).
    flat_block, flat_out = block.reshape(-1), np.empty(block.size, f32)
    local = np.empty((4 * H, N), f32)
    through_h = np.empty((H, N), f32)

    def numpy_calls():  # the element-wise calls of fast.lstm_backward_fast's loop (no mask), call for call
        blocks = local.reshape(4, H, N)
        for t in range(T - 1, -1, -1):
            np.add(dh_fm[t], dh_next, out=dh_t)
            np.multiply(tanh_c[t], tanh_c[t], out=through_h)
            np.subtract(1.0, through_h, out=through_h)
            np.multiply(through_h, gates[t, :H], out=through_h)
            np.multiply(through_h, dh_t, out=through_h)
            dc[...] += through_h
            np.subtract(1.0, gates[t, :3 * H], out=local[:3 * H])
            local[:3 * H] *= gates[t, :3 * H]
            blocks[0] *= tanh_c[t]
            blocks[1] *= gates[t, 3 * H:]
            blocks[2] *= cells[t]
            np.multiply(gates[t, 3 * H:], gates[t, 3 * H:], out=blocks[3])
            np.subtract(1.0, blocks[3], out=blocks[3])
            blocks[3] *= gates[t, H:2 * H]
            np.multiply(blocks[0], dh_t, out=da[:H, t])
            np.multiply(blocks[1:], dc, out=da[H:, t].reshape(3, H, N))
            dc[...] *= gates[t, 2 * H:3 * H]

    with threadpool_limits(1):
        fns = {"tanh_numpy": lambda: np.tanh(block, out=block), "tanh_loop": lambda: tanh_loop(block),
               "tanh_rational": lambda: fused.tanh32(flat_block, flat_out),
               "forward_numpy_calls": forward_numpy_calls, "forward_numpy_tanh_and_loop": forward_numpy_tanh_and_loop,
               "forward_one_loop": forward_one_loop,
               "backward_whole_array": whole_array, "backward_into_slice": into_slice,
               "backward_with_branch": with_branch, "backward_numpy_calls": numpy_calls}
        for fn in fns.values():
            fn()  # compiles the Numba loops
        # Each tanh call overwrites its input with its output (tanh of tanh of ...): the values
        # start in [0, 1) and only shrink, so a C library's tanh takes the same branch throughout.
        block[...] = r(4 * H, N)
        t = {name: v["median_s"] for name, v in
             timed_round_robin(fns, min_repeats=20, min_seconds=min_seconds, block=3, untimed_first=True).items()}
    return {"N": N, "H": H, "T": T, "dtype": "float32", "median_s": t,
            "tanh_loop_over_numpy": t["tanh_loop"] / t["tanh_numpy"],
            "numpy_over_rational_tanh": t["tanh_numpy"] / t["tanh_rational"],
            "forward_numpy_calls_over_one_loop": t["forward_numpy_calls"] / t["forward_one_loop"],
            "forward_numpy_tanh_and_loop_over_one_loop": t["forward_numpy_tanh_and_loop"] / t["forward_one_loop"],
            "slice_over_whole_array": t["backward_into_slice"] / t["backward_whole_array"],
            "branch_over_whole_array": t["backward_with_branch"] / t["backward_whole_array"],
            "numpy_calls_over_whole_array": t["backward_numpy_calls"] / t["backward_whole_array"]}


def bench_blas_kernels(threads: int) -> dict:
    """float32 GEMM speed (GFLOP/s) with the kernel OpenBLAS chooses, and with the ones this CPU
    could also run: OpenBLAS picks its kernel from the CPU's family and model number, and a CPU
    newer than the OpenBLAS release may get an older, slower kernel than it supports."""
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    cores = [None, "Haswell"] + (["SkylakeX"] if {"avx512f", "avx512bw", "avx512vl"} <= flags else [])
    results = {}
    for core in cores:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads)}
        env.pop("OPENBLAS_CORETYPE", None)
        if core:
            env["OPENBLAS_CORETYPE"] = core
        run = subprocess.run([sys.executable, "-c", GEMM_SNIPPET], env=env, capture_output=True, text=True)
        if run.returncode == 0:
            results[core or "default"] = json.loads(run.stdout)
    return results


# ------------------------------------------------------------------- the course's own budget
def notebook_times_from_junit(path: Path) -> dict:
    """Seconds per notebook, summed over its cells, from the JUnit XML file nbval writes
    (`make test-notebooks` leaves one in _build/nbval-PROFILE.xml)."""
    import xml.etree.ElementTree as ET

    times: dict = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        # nbval's class name is the path with "/" written as ".": "chapters.03_numpy_rnn.ipynb"
        name = case.get("file") or case.get("classname", "").removesuffix(".ipynb").replace(".", "/") + ".ipynb"
        times[name] = times.get(name, 0.0) + float(case.get("time", 0.0))
    return times


def junit_wall_seconds(path: Path) -> float:
    """The wall-clock time of the whole nbval run of a JUnit XML file (pytest's test-suite time)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return sum(float(s.get("time", 0.0)) for s in suites)


def bench_course(junit: Path | None) -> dict:
    """Execution time of every notebook, the book build and grading 100 submissions.

    With `junit`, the notebook times are the per-cell times of that nbval run (two notebooks
    at a time, one per core, as `make test` runs them); without it, each notebook is executed
    here, one at a time, as a reader would run it (20-30 minutes on 2 cores).
    """
    import glob

    python = sys.executable
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}
    wall = None
    if junit is not None:
        notebooks, source = notebook_times_from_junit(junit), f"nbval run {junit.name} of make test, 2 notebooks at a time"
        # Two notebooks at a time: the sum of their times counts each while it shared the cores,
        # and the run itself took about half of it.
        wall = junit_wall_seconds(junit)
    else:
        notebooks, source = {}, "executed one at a time"
        for path in sorted(glob.glob(str(ROOT / "chapters" / "*.ipynb"))) + \
                sorted(glob.glob(str(ROOT / "solutions" / "*" / "*.ipynb"))):
            t0 = time.perf_counter()
            subprocess.run([python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--stdout",
                            "--ExecutePreprocessor.timeout=1800", path], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            notebooks[str(Path(path).relative_to(ROOT))] = time.perf_counter() - t0
            print(f"  course: {Path(path).name}: {notebooks[str(Path(path).relative_to(ROOT))]:.0f} s", flush=True)
    t0 = time.perf_counter()
    subprocess.run([str(Path(python).parent / "jupyter-book"), "build", str(ROOT), "--all", "--quiet"], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    book = time.perf_counter() - t0
    print(f"  course: book build {book:.0f} s", flush=True)
    t0 = time.perf_counter()
    grading = subprocess.run([python, str(ROOT / "scripts" / "benchmark_grading.py"), "--n", "100",
                              "--allow-weaker-sandbox"], env=env, capture_output=True, text=True)
    grading_s = time.perf_counter() - t0
    print(f"  course: grading 100 submissions {grading_s:.0f} s", flush=True)
    chapters = {k: v for k, v in notebooks.items() if k.startswith("chapters/")}
    slowest = max(chapters, key=chapters.get)
    return {"notebooks_s": notebooks, "notebook_times_from": source, "all_notebooks_s": sum(notebooks.values()),
            "run_wall_s": wall if wall is not None else sum(notebooks.values()),
            "chapters_s": sum(chapters.values()), "slowest_chapter": slowest, "book_build_s": book,
            "grading_100_s": grading_s, "grading_ok": grading.returncode == 0,
            "grading_output_tail": grading.stdout[-600:]}


# ----------------------------------------------------------------------------- main
FULL_SIZES = [(N, H, T) for T in (50, 200) for H in (64, 256, 512) for N in (1, 16, 64)]
KERAS_SIZES = [(N, H, 50) for H in (64, 256, 512) for N in (1, 16, 64)] + [(64, 256, 200)]
QUICK_SIZES = [(4, 16, 10), (16, 64, 20), (64, 256, 50)]  # the last: the LSTM target size


def target_repeats_as_the_layers_part(threads: int, quick: bool, pool) -> dict:
    """The target size's extra measurements, as both the layers part and `--only target` make
    them: five (two with quick), each four times as long as one of the table's, so that its
    median spans more of the machine's slow and fast spells."""
    return bench_target_repeats(2 if quick else 5, 4 * (0.05 if quick else 1.0), threads, pool)


def worker(threads: int, quick: bool, all_lengths: bool, output: Path, target_method: str | None = None,
           lengths: bool = False) -> None:
    """The NumPy and Keras timings for one thread count, in a fresh process: BLAS and
    TensorFlow fix their thread counts when they load. With a target_method, only the target
    size's extra measurements: "repeats", as the full run makes them (`bench_target_repeats`);
    "paired", with paired ratios (`bench_target_paired`); "scaling", one thread against
    `threads` (`bench_target_scaling`); "parallel", the same with `rnncourse.parallel`'s step.
    With lengths, only the sweep over sequence lengths (`bench_lengths`)."""
    _set_threads_before_imports(threads)
    if target_method in ("paired", "scaling", "parallel"):
        sys.path.insert(0, str(ROOT))
        if target_method == "paired":
            print(f"-- {threads} thread(s): the target size, paired ratios", flush=True)
            repeat = bench_target_paired(2 if quick else 5, 2 if quick else 15, threads)
        else:
            print(f"-- 1 and {threads} threads: the target size, {target_method}", flush=True)
            repeat = bench_target_scaling(2 if quick else 5, 2 if quick else 11, threads,
                                          parallel=target_method == "parallel")
        output.write_text(json.dumps({"target_repeats": repeat}))
        return
    if target_method == "repeats":
        sys.path.insert(0, str(ROOT))
        from rnncourse.processes import BatchProcesses

        pool = BatchProcesses(workers=threads - 1) if threads > 1 else None
        print(f"-- {threads} thread(s): the target size", flush=True)
        try:
            repeat = target_repeats_as_the_layers_part(threads, quick, pool)
        finally:
            if pool is not None:
                pool.close()
        output.write_text(json.dumps({"target_repeats": repeat}))
        return
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # TensorFlow's own default: what a reader gets
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if lengths:
        print(f"-- {threads} thread(s): NumPy against Keras as the sequence grows", flush=True)
        rows = (bench_lengths(0.05, threads, QUICK_LENGTHS, LENGTH_SHAPES[:1]) if quick else
                bench_lengths(1.0, threads))
        output.write_text(json.dumps({"lengths": rows}))
        return
    sizes = QUICK_SIZES if quick else [s for s in FULL_SIZES if all_lengths or s[2] == 50]
    keras_sizes = QUICK_SIZES if quick else KERAS_SIZES
    min_seconds = 0.05 if quick else 1.0
    print(f"-- {threads} thread(s)", flush=True)
    from rnncourse.processes import BatchProcesses

    # One pool for the whole run: a worker process takes most of a second to start.
    pool = BatchProcesses(workers=threads - 1) if threads > 1 else None
    try:
        rows = {"numpy": bench_numpy(sizes, ["rnn", "lstm", "gru"], min_seconds, threads, pool),
                "keras": bench_keras(keras_sizes, ["rnn", "lstm", "gru"], min_seconds, threads, pool)}
        print("-- the target size, measured again", flush=True)
        rows["target_repeats"] = target_repeats_as_the_layers_part(threads, quick, pool)
    finally:
        if pool is not None:
            pool.close()
    for part in (rows["numpy"], rows["keras"]):
        for row in part:
            row["threads"] = threads
    output.write_text(json.dumps(rows))


def cpu_times() -> dict | None:
    """The machine's CPU time so far, from Linux's /proc/stat (None elsewhere): "total", all
    categories over all CPUs, and "steal", the time a virtual machine's CPUs were ready to run but
    the host ran something else (another tenant). In clock ticks; only differences mean anything."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    if fields[0] != "cpu" or len(fields) < 9:
        return None
    ticks = [int(v) for v in fields[1:9]]   # user nice system idle iowait irq softirq steal
    return {"total": sum(ticks), "steal": ticks[7]}


def steal_fraction(before: dict | None, after: dict | None) -> float | None:
    """The share of the CPUs' time stolen by the host between two `cpu_times` readings."""
    if before is None or after is None or after["total"] <= before["total"]:
        return None
    return (after["steal"] - before["steal"]) / (after["total"] - before["total"])


def run_worker(output: Path, name: str, threads: int, flags: list, quick: bool) -> dict:
    """This script again, as a worker in a fresh process with `threads` threads and `flags`; its
    results, read from (and then removed with) the file it writes beside `output`."""
    out = output.with_suffix(f".{name}{threads}.json")
    command = [sys.executable, __file__, "--worker", str(out), "--threads", str(threads), *flags]
    subprocess.run(command + ["--quick"] * quick, check=True)
    rows = json.loads(out.read_text())
    out.unlink()
    return rows


def measure_target_again(threads: int, quick: bool, output: Path, method: str = "repeats") -> dict:
    """The target size measured once more at `threads` threads, in a fresh worker process, as
    the layers part measures it (method "repeats": `bench_target_repeats`), with paired ratios
    ("paired": `bench_target_paired`) or taken apart into one thread's efficiency and the
    speed-ups of more ("scaling": `bench_target_scaling`), with when and on what code it ran:
    an entry of the results file's `target_history`, which keeps every such run, so that a
    verdict can be read from all of them and not only from the latest."""
    info = machine_info()
    load_start, cpu_start = os.getloadavg(), cpu_times()
    entry = run_worker(output, "target", threads, ["--target-method", method], quick)["target_repeats"]
    entry["measured"] = {"git_commit": info["git_commit"], "git_dirty": info["git_dirty"], "cpu": info["cpu"],
                         "quick": quick,
                         "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(),
                         # A shared virtual machine's noise: how much of its CPUs' time the host
                         # gave to others while this ran.
                         "steal_fraction": steal_fraction(cpu_start, cpu_times())}
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="2,1",
                        help="BLAS and TensorFlow thread counts, comma-separated (default 2,1: the first gets "
                             "every size, the others the length-50 sizes)")
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs: a smoke test")
    parser.add_argument("--course", action="store_true", help="also time every notebook, the book, grading")
    parser.add_argument("--course-from-junit", type=Path, default=None,
                        help="take the notebook times from this nbval JUnit XML file instead of executing them")
    parser.add_argument("--only", choices=["layers", "batching", "fusion", "course", "target", "paired", "scaling",
                                           "parallel", "lengths"],
                        action="append",
                        help="run only these parts (repeatable); the others keep their previous results. "
                             "target: the target size measured once more (as the layers part does), added "
                             "to the runs already recorded in target_history; paired: the same with "
                             "paired ratios (bench_target_paired); scaling: one thread against the "
                             "first thread count (bench_target_scaling); parallel: the same with "
                             "rnncourse.parallel's step; lengths: NumPy against Keras at lengths 25 to 800 "
                             "(bench_lengths), at every thread count")
    parser.add_argument("--output", type=Path, default=OUT)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--all-lengths", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lengths", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target-method", choices=["repeats", "paired", "scaling", "parallel"], default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    thread_counts = [int(t) for t in str(args.threads).split(",")]
    if args.quick and args.only and args.worker is None:
        # --quick starts from an empty results file: with --only, every other part would be lost.
        parser.error("--quick cannot be combined with --only (it would overwrite the other parts with nothing)")
    if args.worker is not None:
        worker(thread_counts[0], args.quick, args.all_lengths, args.worker, args.target_method, args.lengths)
        return 0
    _set_threads_before_imports(thread_counts[0])
    sys.path.insert(0, str(ROOT))

    previous = json.loads(args.output.read_text()) if args.output.exists() and not args.quick else {}
    parts = set(args.only or ["layers", "batching", "fusion"]) | ({"course"} if args.course else set())
    started = time.perf_counter()
    result = {"machine": machine_info(), "threads": thread_counts, "settings": {
        "dtype": "float32", "input_dim": INPUT_DIM, "timing": "median of round-robin repeats after a warm-up",
        "min_seconds_per_measurement": 0.05 if args.quick else 1.0}}
    if "layers" in parts:
        result["numpy"], result["keras"], result["target_repeats"] = [], [], []
        for k, threads in enumerate(thread_counts):
            rows = run_worker(args.output, "worker", threads, ["--all-lengths"] * (k == 0), args.quick)
            result["numpy"] += rows["numpy"]
            result["keras"] += rows["keras"]
            result["target_repeats"].append(rows["target_repeats"])
    else:
        for key in ("numpy", "keras", "target_repeats"):
            result[key] = previous.get(key)
    result["target_history"] = list(previous.get("target_history") or [])
    for part, method in (("target", "repeats"), ("paired", "paired")):
        if part in parts:
            for threads in thread_counts:
                result["target_history"].append(measure_target_again(threads, args.quick, args.output, method))
    for part in ("scaling", "parallel"):  # one thread against the most
        if part in parts:
            result["target_history"].append(measure_target_again(max(thread_counts), args.quick, args.output, part))
    if "lengths" in parts:  # each thread count in a fresh process, as for the layers
        # One sweep on a shared machine is noisy: each run's rows are kept beside the earlier
        # runs', numbered by run (rows without a number are run 1).
        result["lengths"] = list(previous.get("lengths") or [])
        run = max((r.get("run", 1) for r in result["lengths"]), default=0) + 1
        for threads in thread_counts:
            rows = run_worker(args.output, "lengths", threads, ["--lengths"], args.quick)["lengths"]
            ended = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "git_commit": result["machine"]["git_commit"]}
            result["lengths"] += [dict(row, run=run, measured=ended) for row in rows]
    else:
        result["lengths"] = previous.get("lengths")
    if "batching" in parts:  # the parts timed with one BLAS thread (batching: each setup says)
        result["batching"] = bench_batching(3.0 if args.quick else 45.0)
        result["hot_spots"] = bench_hot_spots()
        result["since_first_fast_path"] = bench_since_first_fast_path(args.quick)
        result["blas_kernels"] = bench_blas_kernels(1)
    else:
        for key in ("batching", "hot_spots", "since_first_fast_path", "blas_kernels"):
            result[key] = previous.get(key)
    result["fusion"] = bench_fusion_choices(0.2 if args.quick else 3.0) if "fusion" in parts else previous.get("fusion")
    result["course"] = bench_course(args.course_from_junit) if "course" in parts else previous.get("course")
    # When and on what code each part was measured: the parts run now, and those kept from the
    # previous file as they were recorded then.
    # The CPU too: a part kept from an earlier run may come from another machine than the layers'.
    now = {key: result["machine"][key] for key in ("git_commit", "git_dirty", "load_average_at_start", "cpu")}
    now.update(date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # when the run ended
               load_average_at_end=os.getloadavg(), seconds=time.perf_counter() - started)
    measured = dict(previous.get("machine", {}).get("parts_measured", {}))
    measured.update({part: now for part in parts})
    if "layers" not in parts and previous.get("machine"):
        # The layer timings are kept: so is the machine section that describes their run.
        result["machine"], result["threads"] = previous["machine"], previous.get("threads", thread_counts)
    else:
        result["machine"]["load_average_at_end"] = os.getloadavg()
        result["machine"]["bench_seconds"] = time.perf_counter() - started
    result["machine"].pop("parts_measured_later", None)
    result["machine"]["parts_measured"] = measured
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
