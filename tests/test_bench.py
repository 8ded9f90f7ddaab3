"""The benchmark script (scripts/bench.py): its timing helper, a tiny NumPy run, and the shape of
the committed results file that the Benchmarks appendix draws."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_round_robin_times_every_function_in_turn():
    calls = []
    result = bench.timed_round_robin({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                     min_repeats=3, min_seconds=0.0)
    assert calls[:2] == ["a", "b"]                       # the warm-up calls
    assert calls[2:8] == ["a", "b", "a", "b", "a", "b"]  # then one repetition of each in turn
    assert result["a"]["repeats"] == result["b"]["repeats"] == 3


def test_round_robin_blocks_can_start_with_an_untimed_repetition():
    calls = []
    result = bench.timed_round_robin({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                     min_repeats=2, min_seconds=0.0, block=2, untimed_first=True)
    assert calls == ["a", "b"] + ["a"] * 3 + ["b"] * 3       # warm-ups, then blocks of 1 untimed + 2 timed
    assert result["a"]["repeats"] == result["b"]["repeats"] == 2


def test_numpy_part_runs_and_reports_ratios():
    rows = bench.bench_numpy([(2, 8, 5)], ["rnn", "lstm", "gru"], min_seconds=0.0)
    assert [r["kind"] for r in rows] == ["rnn", "lstm", "gru"]
    for row in rows:
        assert row["fast_vs_per_step_floor"] == pytest.approx(row["per_step_floor_s"] / row["fast_s"])
        assert row["fast_s"] > 0 and row["clear_s"] > 0
        assert ("fused_s" in row) == (row["kind"] == "lstm")   # the fused path exists for the LSTM only
    lstm_row = rows[1]
    assert lstm_row["fused_vs_hoisted_floor"] == pytest.approx(lstm_row["hoisted_floor_s"] / lstm_row["fused_s"])


def test_the_target_size_can_be_measured_again_with_its_spread():
    result = bench.bench_target_repeats(2, 0.0, threads=1, size=("lstm", 2, 8, 5))
    assert result["repeats"] == 2 and len(result["runs"]) == 2
    for key in ("fast_vs_per_step_floor", "fused_vs_per_step_floor", "fused_vs_hoisted_floor"):
        values = [r[key] for r in result["runs"]]
        assert result["summary"][key]["mean"] == pytest.approx(sum(values) / 2)
        assert result["summary"][key]["min"] == min(values)


def test_the_fused_loops_design_choices_are_measured():
    result = bench.bench_fusion_choices(min_seconds=0.0)
    assert set(result["median_s"]) == {"tanh_numpy", "tanh_loop", "tanh_rational", "forward_numpy_calls",
                                       "forward_numpy_tanh_and_loop", "forward_one_loop", "backward_whole_array",
                                       "backward_into_slice", "backward_with_branch", "backward_numpy_calls"}
    assert result["numpy_over_rational_tanh"] == pytest.approx(result["median_s"]["tanh_numpy"]
                                                               / result["median_s"]["tanh_rational"])
    assert result["tanh_loop_over_numpy"] == pytest.approx(result["median_s"]["tanh_loop"]
                                                           / result["median_s"]["tanh_numpy"])


def test_the_split_steps_include_the_fused_lstm():
    steps = bench.numpy_steps("lstm", bench.numpy_problem("lstm", 4, 3, 5), threads=2)
    assert {"clear", "fast", "fused", "fast_split", "fused_split"} <= set(steps)
    for step in steps.values():
        step()
    assert "fused" not in bench.numpy_steps("gru", bench.numpy_problem("gru", 4, 3, 5), threads=2)


def test_committed_results_name_the_machine_and_hold_every_part():
    results = json.loads((ROOT / "book" / "data" / "benchmarks.json").read_text())
    machine = results["machine"]
    for key in ("cpu", "logical_cpus", "blas", "versions", "date", "load_average_at_start"):
        assert key in machine
    sizes = {(r["kind"], r["N"], r["H"], r["T"]) for r in results["numpy"]}
    assert {(k, N, H, T) for k in ("rnn", "lstm", "gru") for N in (1, 16, 64) for H in (64, 256, 512)
            for T in (50, 200)} <= sizes
    assert any(r["kind"] == "lstm" and r["N"] == 64 and r["H"] == 256 for r in results["keras"])
    assert results["batching"]["comparisons"]
    target = [r for r in results["numpy"] if (r["kind"], r["N"], r["H"], r["T"]) == ("lstm", 64, 256, 50)]
    assert all("fused_s" in r for r in target)
    assert [r["threads"] for r in results["target_repeats"]] == results["threads"]
    assert results["fusion"]["median_s"]["backward_whole_array"] > 0


def test_the_first_fast_path_is_timed_beside_the_current_one():
    result = bench.bench_since_first_fast_path(quick=True)
    if not result["rows"]:
        pytest.skip("no git history here: " + result["note"])
    assert [(r["step"].split()[0], r["threads"]) for r in result["rows"]] == [
        ("LSTM", 2), ("GRU", 2), ("LSTM", 1), ("GRU", 1), ("character", 1), ("character", 1)]
    for row in result["rows"]:
        assert row["speedup"] == pytest.approx(row["before_s"] / row["after_s"])
    # the old character model runs on the old fast path, not on today's
    old_char = bench.module_at_commit("charmodel", bench.FIRST_FAST_PATH)
    assert old_char.rnn_forward_ids_fast.__module__ == f"rnncourse_at_{bench.FIRST_FAST_PATH}.fast"


def test_min_char_style_loop_is_the_same_model_as_charrnn():
    import numpy as np

    from rnncourse.charmodel import CharRNN

    model = CharRNN(11, 7, seed=3)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, 26)
    h0 = 0.3 * rng.standard_normal((1, 7))
    loss, grads, h = model.loss_and_grads(ids[None, :-1], ids[None, 1:], h0)
    loop_loss, loop_grads, loop_h = bench.min_char_style_loss_and_grads(model.params, ids[:-1], ids[1:], h0[0])
    assert abs(loss - loop_loss) < 1e-12
    np.testing.assert_allclose(loop_h, h[0], atol=1e-12)
    for name in grads:
        np.testing.assert_allclose(loop_grads[name], grads[name], atol=1e-12, err_msg=name)


def test_throughput_is_measured_in_blocks_with_the_order_rotated(monkeypatch):
    import numpy as np

    order = []

    class Steps:
        def __init__(self, model, s, train_ids, optimizer):
            self.name = s["name"]

        def next_batch(self):
            return None

        def train(self, batch):
            order.append(self.name)

    monkeypatch.setattr(bench, "_TrainingSteps", Steps)
    monkeypatch.setattr(bench, "_setup_model", lambda s, vocab_size, hidden: None)
    setups = {"a": dict(name="a", batch=1, seq=25), "b": dict(name="b", batch=32, seq=64, blas_threads=2)}
    rates = bench.throughput_in_blocks(setups, 5, 4, np.zeros(10, dtype=int), seconds=0.0, rounds=3)
    # Rounds a b | b a | a b: blocks of 4 consecutive steps (one untimed, then at least 3 timed),
    # so the runs of equal names are 4, 8, 8, 4 long.
    runs = []
    for name in order:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    assert runs == [["a", 4], ["b", 8], ["a", 8], ["b", 4]]
    for name, s in setups.items():
        assert rates[name]["steps_timed"] == 9 and len(rates[name]["per_round"]) == 3
        assert rates[name]["blas_threads"] == s.get("blas_threads", 1)


def test_the_second_machines_results_name_it_and_hold_the_layers_and_the_fusion_choices():
    """The Benchmarks page's fourth round reads a second results file, from a CPU without AVX-512."""
    results = json.loads((ROOT / "book" / "data" / "benchmarks-avx2.json").read_text())
    machine = results["machine"]
    assert "avx2" in machine["cpu"]["flags"] and "avx512f" not in machine["cpu"]["flags"]
    assert {"layers", "fusion"} <= set(machine["parts_measured"])
    target = [r for r in results["numpy"] if (r["kind"], r["N"], r["H"], r["T"]) == ("lstm", 64, 256, 50)]
    assert sorted(r["threads"] for r in target) == [1, 2] and all("fused_s" in r for r in target)
    assert [r["threads"] for r in results["target_repeats"]] == results["threads"]
    assert results["fusion"]["median_s"]["tanh_rational"] > 0


def test_notebook_times_and_the_runs_wall_time_come_from_nbvals_junit_file(tmp_path):
    xml = tmp_path / "nbval.xml"
    xml.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="3" time="7.5">'
                   '<testcase classname="chapters.03_numpy_rnn.ipynb" name="Cell 0" time="2.0"/>'
                   '<testcase classname="chapters.03_numpy_rnn.ipynb" name="Cell 1" time="3.0"/>'
                   '<testcase classname="chapters.07_0_sequence_shapes.ipynb" name="Cell 0" time="4.5"/>'
                   '</testsuite></testsuites>')
    assert bench.notebook_times_from_junit(xml) == {"chapters/03_numpy_rnn.ipynb": 5.0,
                                                     "chapters/07_0_sequence_shapes.ipynb": 4.5}
    assert bench.junit_wall_seconds(xml) == 7.5   # two at a time: less than the 9.5 s summed


def test_the_second_machines_course_budget_is_from_the_current_chapters():
    """The page's budget section reads it: every chapter timed, the run's wall time recorded."""
    course = json.loads((ROOT / "book" / "data" / "benchmarks-avx2.json").read_text())["course"]
    chapters = {str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb")}
    assert chapters <= set(course["notebooks_s"])
    assert course["slowest_chapter"] == max((k for k in course["notebooks_s"] if k.startswith("chapters/")),
                                            key=course["notebooks_s"].get)
    assert 0 < course["run_wall_s"] < course["all_notebooks_s"] and course["grading_ok"]


def test_the_target_part_adds_a_run_to_the_history_and_keeps_every_other_part(tmp_path, monkeypatch):
    """`--only target` measures the target size again in a worker process (faked here) and
    appends it, with when and on what code it ran, to the runs already recorded."""
    output = tmp_path / "results.json"
    earlier = {"run": 0, "measured": {"date": "earlier"}}
    previous = {"machine": {"cpu": "kept", "parts_measured": {"layers": {"date": "then"}}}, "threads": [2, 1],
                "numpy": ["kept"], "keras": ["kept"], "target_repeats": ["kept"], "fusion": {"kept": True},
                "course": {"kept": True}, "target_history": [earlier]}
    output.write_text(json.dumps(previous))
    calls = []
    real_run = bench.subprocess.run

    def fake_run(command, **kwargs):
        if "--worker" not in command:
            return real_run(command, **kwargs)       # git, asked which commit this is
        calls.append(command)
        worker_out = Path(command[command.index("--worker") + 1])
        threads = int(command[command.index("--threads") + 1])
        worker_out.write_text(json.dumps({"target_repeats": {"threads": threads, "summary": {}}}))

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    assert bench.main(["--only", "target", "--threads", "2", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert len(calls) == 1 and calls[0][calls[0].index("--target-method") + 1] == "repeats"
    assert result["target_history"][0] == earlier
    new = result["target_history"][1]
    assert new["threads"] == 2 and {"git_commit", "cpu", "quick", "date", "load_average_at_start",
                                    "steal_fraction"} <= set(new["measured"])
    for key in ("numpy", "keras", "target_repeats", "fusion", "course"):
        assert result[key] == previous[key]
    assert result["machine"]["cpu"] == "kept" and "target" in result["machine"]["parts_measured"]
    # The part's own record names the CPU it ran on (this one), not the kept layers run's.
    assert result["machine"]["parts_measured"]["target"]["cpu"] == bench.machine_info()["cpu"]
    assert not list(tmp_path.glob("*.target*.json"))     # the worker's file is removed


def test_the_share_of_cpu_time_stolen_by_the_host_is_read_from_proc_stat():
    before = {"total": 1000, "steal": 10}
    assert bench.steal_fraction(before, {"total": 1200, "steal": 30}) == pytest.approx(0.1)
    assert bench.steal_fraction(None, before) is None and bench.steal_fraction(before, before) is None
    now = bench.cpu_times()
    if now is not None:                                   # Linux
        assert 0 <= now["steal"] <= now["total"]


def test_a_quick_run_of_one_part_is_refused_rather_than_emptying_the_other_parts(tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--only", "target", "--output", str(tmp_path / "results.json")])
    assert not (tmp_path / "results.json").exists()


def test_the_target_size_can_be_measured_with_paired_ratios():
    """Each measurement is the median of its rounds' ratios, each round's floor over its own steps."""
    result = bench.bench_target_paired(2, 3, threads=2, size=("lstm", 4, 8, 5))
    assert result["method"] == "paired" and result["repeats"] == 2 and result["rounds"] == 3
    assert result["untimed_repetitions"] == 2
    assert len(result["runs"]) == 2
    for key in ("fused_vs_per_step_floor", "fused_split_vs_per_step_floor"):
        values = [r[key] for r in result["runs"]]
        assert all(v > 0 for v in values)
        assert result["summary"][key]["mean"] == pytest.approx(sum(values) / 2)
        assert result["summary"][key]["max"] == max(values)


@pytest.mark.parametrize("part, threads, expected_threads", [("paired", "2", ["2"]), ("scaling", "2,1", ["2"]),
                                                             ("parallel", "2,1", ["2"])])
def test_the_paired_and_scaling_parts_add_one_run_to_the_history(tmp_path, monkeypatch, part, threads,
                                                                    expected_threads):
    """`--only paired` measures at each thread count; `--only scaling` and `--only parallel` once,
    at the most threads (they compare them with one). Each run is appended, with its method, to
    the runs before it."""
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"machine": {"cpu": "kept", "parts_measured": {}}, "threads": [2],
                                  "target_history": [{"run": 0}]}))
    calls = []
    real_run = bench.subprocess.run

    def fake_run(command, **kwargs):
        if "--worker" not in command:
            return real_run(command, **kwargs)
        calls.append(command)
        Path(command[command.index("--worker") + 1]).write_text(
            json.dumps({"target_repeats": {"threads": 2, "method": part, "summary": {}}}))

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    assert bench.main(["--only", part, "--threads", threads, "--output", str(output)]) == 0
    history = json.loads(output.read_text())["target_history"]
    assert [c[c.index("--target-method") + 1] for c in calls] == [part] * len(expected_threads)
    assert [c[c.index("--threads") + 1] for c in calls] == expected_threads
    assert history[0] == {"run": 0} and history[1]["method"] == part and "steal_fraction" in history[1]["measured"]


@pytest.mark.parametrize("parallel, method, keys", [(False, "scaling", bench.SCALING_KEYS),
                                                     (True, "parallel", bench.SCALING_KEYS + bench.PARALLEL_KEYS)])
def test_the_scaling_measurement_takes_the_efficiency_apart_round_by_round(parallel, method, keys):
    """Every factor of every measurement is a ratio of two timings (positive); the summary is
    their mean over the measurements; one thread cannot be compared with itself. With
    parallel=True, rnncourse.parallel's step is timed too, and Numba's threading layer recorded."""
    result = bench.bench_target_scaling(2, 3, threads=2, size=("lstm", 4, 8, 5), parallel=parallel)
    assert result["method"] == method and result["threads"] == 2 and len(result["runs"]) == 2
    assert ("numba_threading_layer" in result) == parallel
    for run in result["runs"]:
        assert set(run) == set(keys) and all(v > 0 for v in run.values())
    assert result["summary"]["floor_speedup"]["mean"] == pytest.approx(
        sum(r["floor_speedup"] for r in result["runs"]) / 2)
    with pytest.raises(ValueError, match="one thread with more"):
        bench.bench_target_scaling(1, 1, threads=1, size=("lstm", 4, 8, 5))


def test_the_length_sweep_times_numpy_against_keras_at_each_length():
    """`--only lengths`: one row per layer, size and length, the fused step beside the fast path
    for the LSTM; here at two tiny sizes and two lengths."""
    rows = bench.bench_lengths(0.01, 1, lengths=(3, 6), shapes=(("lstm", 2, 4), ("rnn", 2, 4)))
    assert [(r["kind"], r["T"]) for r in rows] == [("lstm", 3), ("lstm", 6), ("rnn", 3), ("rnn", 6)]
    for r in rows:
        assert r["threads"] == 1 and r["numpy_fast_s"] > 0 and r["keras_s"] > 0
        assert r["numpy_over_keras"] == pytest.approx(r["numpy_fast_s"] / r["keras_s"])
        assert ("fused_over_keras" in r) == (r["kind"] == "lstm")


def test_each_length_sweep_is_kept_beside_the_earlier_ones(tmp_path, monkeypatch):
    """`--only lengths` adds its rows, numbered by run, to those already recorded (rows without a
    number are the first run's), one worker process per thread count, and keeps every other part."""
    output = tmp_path / "results.json"
    previous = {"machine": {"cpu": "kept", "parts_measured": {}}, "threads": [2, 1], "numpy": ["kept"],
                "lengths": [{"kind": "lstm", "T": 25, "threads": 2}]}
    output.write_text(json.dumps(previous))
    real_run = bench.subprocess.run

    def fake_run(command, **kwargs):
        if "--worker" not in command:
            return real_run(command, **kwargs)       # git, asked which commit this is
        assert "--lengths" in command
        threads = int(command[command.index("--threads") + 1])
        Path(command[command.index("--worker") + 1]).write_text(
            json.dumps({"lengths": [{"kind": "lstm", "T": 25, "threads": threads}]}))

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    assert bench.main(["--only", "lengths", "--threads", "2,1", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert [(r.get("run"), r["threads"]) for r in result["lengths"]] == [(None, 2), (2, 2), (2, 1)]
    assert result["numpy"] == ["kept"] and "lengths" in result["machine"]["parts_measured"]
