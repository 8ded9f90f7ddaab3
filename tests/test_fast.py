"""The fast path (`rnncourse.fast`) against the clear code it speeds up, and against central
differences: outputs and every gradient, with and without padding masks, in float64 and float32."""

import numpy as np
import pytest

from rnncourse import fast, gru, lstm, rnn
from rnncourse.gradcheck import gradient_check

# float64: the fast path sums in another order and computes sigmoid as 0.5 tanh(a/2) + 0.5, so
# it agrees with the clear code to round-off, not bit for bit.
TOL64 = 1e-10
TOL32 = 2e-4
SHAPES = [(3, 7, 4, 5), (1, 1, 2, 3), (5, 12, 3, 8)]


def max_rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def assert_same_loss_and_grads(a, b):
    """Two (loss, grads, h_last) results of a character model's loss_and_grads agree to round-off."""
    assert abs(a[0] - b[0]) < 1e-12
    assert max_rel(b[2], a[2]) < TOL64
    for name in a[1]:
        assert max_rel(b[1][name], a[1][name]) < TOL64, name


def random_mask(rng, N, T):
    mask = rng.random((N, T)) < 0.6
    mask[:, 0] |= ~mask.any(axis=1)
    return mask


def make(kind, rng, N, T, D, H, dtype=np.float64):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    args = dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)))
    if kind == "lstm":
        args["c0"] = rng.standard_normal((N, H))
    args["kernel"] = 0.5 * rng.standard_normal((D, gates * H))
    args["recurrent_kernel"] = 0.5 * rng.standard_normal((H, gates * H))
    args["bias"] = 0.3 * rng.standard_normal((2, 3 * H) if kind == "gru" else gates * H)
    return {k: v.astype(dtype) for k, v in args.items()}


CLEAR = {"rnn": (rnn.rnn_forward, rnn.rnn_backward), "lstm": (lstm.lstm_forward, lstm.lstm_backward),
         "gru": (gru.gru_forward, gru.gru_backward)}
FAST = {"rnn": (fast.rnn_forward_fast, fast.rnn_backward_fast),
        "lstm": (fast.lstm_forward_fast, fast.lstm_backward_fast),
        "gru": (fast.gru_forward_fast, fast.gru_backward_fast)}


def run(pair, kind, args, mask, dh, dc_last=None, **options):
    forward, backward = pair
    out = forward(**args, mask=mask, **options)
    states, cache = out[:-1], out[-1]
    grads = backward(dh, cache, dc_last) if kind == "lstm" else backward(dh, cache)
    return states, grads


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, TOL64), (np.float32, TOL32)])
def test_fast_equals_clear(kind, masked, shape, dtype, tol):
    rng = np.random.default_rng(sum(shape) + 7 * masked)
    N, T, D, H = shape
    args = make(kind, rng, N, T, D, H, dtype)
    mask = random_mask(rng, N, T) if masked else None
    dh = rng.standard_normal((N, T, H)).astype(dtype)
    dc_last = rng.standard_normal((N, H)).astype(dtype) if kind == "lstm" else None
    clear_states, clear_grads = run(CLEAR[kind], kind, args, mask, dh, dc_last)
    fast_states, fast_grads = run(FAST[kind], kind, args, mask, dh, dc_last)
    for c, f in zip(clear_states, fast_states):
        assert f.shape == c.shape and f.dtype == c.dtype
        assert max_rel(f, c) < tol
    assert len(fast_grads) == len(clear_grads)
    for c, f in zip(clear_grads, fast_grads):
        assert f.shape == c.shape
        assert max_rel(f, c) < tol


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
def test_fast_rnn_other_activations(activation):
    rng = np.random.default_rng(3)
    args = make("rnn", rng, 3, 6, 2, 4)
    dh = rng.standard_normal((3, 6, 4))
    mask = random_mask(rng, 3, 6)
    c_states, c_grads = run(CLEAR["rnn"], "rnn", args, mask, dh, activation=activation)
    f_states, f_grads = run(FAST["rnn"], "rnn", args, mask, dh, activation=activation)
    assert max_rel(f_states[0], c_states[0]) < TOL64
    for c, f in zip(c_grads, f_grads):
        assert max_rel(f, c) < TOL64


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True])
def test_fast_gradients_match_central_differences(kind, masked):
    rng = np.random.default_rng(11)
    N, T, D, H = 2, 6, 3, 4
    args = make(kind, rng, N, T, D, H)
    mask = random_mask(rng, N, T) if masked else None
    upstream = rng.standard_normal((N, T, H))
    forward, backward = FAST[kind]

    def loss():
        return float(np.sum(forward(**args, mask=mask)[0] * upstream))

    cache = forward(**args, mask=mask)[-1]
    grads = backward(upstream, cache)
    names = ["x", "h0", "c0"] if kind == "lstm" else ["x", "h0"]
    errors = gradient_check(loss, args, dict(zip(names + ["kernel", "recurrent_kernel", "bias"], grads)))
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_input_gradient_can_be_skipped(kind):
    rng = np.random.default_rng(5)
    args = make(kind, rng, 3, 5, 4, 6)
    dh = rng.standard_normal((3, 5, 6))
    forward, backward = FAST[kind]
    cache = forward(**args)[-1]
    full = backward(dh, cache)
    short = backward(dh, cache, input_gradient=False)
    assert short[0] is None
    for a, b in zip(full[1:], short[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_a_non_contiguous_gradient_gives_the_same_result(kind):
    rng = np.random.default_rng(7)
    args = make(kind, rng, 3, 5, 4, 6)
    dh = rng.standard_normal((5, 3, 6)).swapaxes(0, 1)          # (N, T, H), not C-contiguous
    forward, backward = FAST[kind]
    cache = forward(**args)[-1]
    for a, b in zip(backward(dh, cache), backward(np.ascontiguousarray(dh), cache)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_outputs_are_read_only_views_of_the_cache(kind):
    rng = np.random.default_rng(6)
    args = make(kind, rng, 2, 3, 2, 3)
    h = FAST[kind][0](**args)[0]
    with pytest.raises(ValueError, match="read-only"):
        h[0, 0, 0] = 1.0
    assert np.array_equal(h.copy(), h)


def test_fast_paths_check_their_inputs_like_the_clear_ones():
    rng = np.random.default_rng(8)
    args = make("lstm", rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="kernel"):
        fast.lstm_forward_fast(**{**args, "kernel": args["kernel"].T.copy()})
    with pytest.raises(TypeError, match="lstm_forward_fast"):
        fast.lstm_backward_fast(np.zeros((2, 3, 5)), ("not", "a", "cache"))
    _, _, cache = fast.lstm_forward_fast(**args)
    with pytest.raises(ValueError, match="dh"):
        fast.lstm_backward_fast(np.zeros((2, 3, 4)), cache)
    with pytest.raises(TypeError, match="rnn_forward_fast"):
        fast.rnn_backward_fast(np.zeros((2, 3, 5)), cache)
    gru_args = make("gru", rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="reset_after=True only"):
        fast.gru_forward_fast(**{**gru_args, "bias": gru_args["bias"][0]}, reset_after=False)
    with pytest.raises(ValueError, match="NaN"):
        bad = args["x"].copy()
        bad[0, 1, 2] = np.nan
        fast.lstm_forward_fast(**{**args, "x": bad})


@pytest.mark.parametrize("masked", [False, True])
def test_ids_input_equals_one_hot_input(masked):
    from rnncourse.layers import one_hot

    rng = np.random.default_rng(9)
    N, T, V, H = 3, 6, 7, 5
    ids = rng.integers(0, V, (N, T))
    args = make("rnn", rng, N, T, V, H)
    del args["x"]
    mask = random_mask(rng, N, T) if masked else None
    dh = rng.standard_normal((N, T, H))
    h1, c1 = fast.rnn_forward_fast(one_hot(ids, V, np.float64), **args, mask=mask)
    h2, c2 = fast.rnn_forward_ids_fast(ids, **args, mask=mask)
    assert max_rel(h2, h1) < TOL64
    g1, g2 = fast.rnn_backward_fast(dh, c1), fast.rnn_backward_fast(dh, c2)
    assert g2[0] is None
    for a, b in zip(g1[1:], g2[1:]):
        assert max_rel(b, a) < TOL64
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        fast.rnn_forward_ids_fast(ids + V, **args)
    with pytest.raises(TypeError, match="integer token ids"):
        fast.rnn_forward_ids_fast(ids.astype(float), **args)


def test_charrnn_fast_equals_clear():
    from rnncourse.charmodel import CharRNN

    rng = np.random.default_rng(2)
    ids = rng.integers(0, 9, (4, 11))
    clear, quick = CharRNN(9, 6, seed=1), CharRNN(9, 6, seed=1, fast=True)
    h0 = 0.3 * rng.standard_normal((4, 6))
    a = clear.loss_and_grads(ids[:, :-1], ids[:, 1:], h0)
    b = quick.loss_and_grads(ids[:, :-1], ids[:, 1:], h0)
    assert_same_loss_and_grads(a, b)
    with pytest.raises(TypeError, match="fast must be True or False"):
        CharRNN(9, 6, fast="yes")


def test_charrnn_fast_step_repeats_exactly_and_hands_back_its_own_state():
    """The fast model's buffers are reused by the next call: what it returned before must not change."""
    from rnncourse.charmodel import CharRNN

    rng = np.random.default_rng(3)
    ids = rng.integers(0, 9, (4, 11))
    quick = CharRNN(9, 6, seed=1, fast=True)
    first = quick.loss_and_grads(ids[:, :-1], ids[:, 1:])
    kept = first[0], {k: v.copy() for k, v in first[1].items()}, first[2].copy()
    quick.loss_and_grads(ids[:, 1:], ids[:, :-1], first[2])   # other data, same buffers
    again = quick.loss_and_grads(ids[:, :-1], ids[:, 1:])
    assert again[0] == kept[0]
    np.testing.assert_array_equal(first[2], kept[2])
    for name in kept[1]:
        np.testing.assert_array_equal(first[1][name], kept[1][name])
        np.testing.assert_array_equal(again[1][name], kept[1][name])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_in_place_equals_the_clear_loss(dtype):
    from rnncourse.losses import softmax_cross_entropy

    rng = np.random.default_rng(4)
    logits = (3 * rng.standard_normal((50, 7))).astype(dtype)
    targets = rng.integers(0, 7, 50)
    loss, dlogits = softmax_cross_entropy(logits, targets)
    buffer = logits.copy()
    assert abs(fast.softmax_cross_entropy_in_place(buffer, targets) - loss) < (1e-12 if dtype == np.float64 else 1e-5)
    assert buffer.dtype == dtype
    assert max_rel(buffer, dlogits) < (1e-12 if dtype == np.float64 else 1e-6)


def test_softmax_cross_entropy_in_place_refuses_what_it_cannot_overwrite():
    logits, targets = np.zeros((4, 3)), np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match="C-contiguous"):
        fast.softmax_cross_entropy_in_place(np.zeros((3, 4)).T, targets)
    frozen = logits.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fast.softmax_cross_entropy_in_place(frozen, targets)
    with pytest.raises(TypeError, match="integer class ids"):
        fast.softmax_cross_entropy_in_place(logits.copy(), targets.astype(float))
    with pytest.raises(TypeError, match=r"\(4,\)"):
        fast.softmax_cross_entropy_in_place(logits.copy(), targets[:3])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        fast.softmax_cross_entropy_in_place(logits.copy(), targets + 1)
    bad = logits.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="logits"):
        fast.softmax_cross_entropy_in_place(bad, targets)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_a_workspace_changes_nothing_but_where_arrays_live(kind):
    rng = np.random.default_rng(12)
    args = make(kind, rng, 3, 6, 4, 5)
    dh = rng.standard_normal((3, 6, 5))
    mask = random_mask(rng, 3, 6)
    forward, backward = FAST[kind]
    plain = [np.array(a) for a in forward(**args, mask=mask)[:-1]], backward(dh, forward(**args, mask=mask)[-1])
    ws = fast.Workspace()
    for _ in range(2):  # the second call reuses the first call's buffers
        out = forward(**args, mask=mask, workspace=ws)
        grads = backward(dh, out[-1])
        for a, b in zip(plain[0], out[:-1]):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(plain[1], grads):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="Workspace"):
        forward(**args, workspace={})


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_mixed_precision_follows_the_clear_code(kind):
    """float32 data with float64 weights: both paths compute and return float64."""
    rng = np.random.default_rng(13)
    args = make(kind, rng, 2, 4, 3, 5)
    args["x"] = args["x"].astype(np.float32)
    dh = rng.standard_normal((2, 4, 5))
    clear_states, clear_grads = run(CLEAR[kind], kind, args, None, dh)
    fast_states, fast_grads = run(FAST[kind], kind, args, None, dh)
    for c, f in zip(clear_states, fast_states):
        assert f.dtype == c.dtype == np.float64
        assert max_rel(f, c) < TOL64
    for c, f in zip(clear_grads, fast_grads):
        assert max_rel(f, c) < TOL64


def test_map_batch_slices_runs_every_slice_in_order():
    rows = np.arange(10.0)[:, None] * np.ones((1, 3))
    out = fast.map_batch_slices(lambda i, a: (i, a[:, 0].tolist()), (rows,), threads=3)
    assert [i for i, _ in out] == [0, 1, 2]
    assert sum((values for _, values in out), []) == list(np.arange(10.0))
    with pytest.raises(ValueError, match="positive integer"):
        fast.map_batch_slices(lambda i, a: a, (rows,), threads=0)


def test_charrnn_split_over_threads_equals_one():
    from rnncourse.charmodel import CharRNN, SplitBatch

    rng = np.random.default_rng(4)
    ids = rng.integers(0, 9, (5, 13))
    one = CharRNN(9, 6, seed=1, fast=True)
    two = SplitBatch(CharRNN(9, 6, seed=1, fast=True), threads=2)
    h0 = 0.3 * rng.standard_normal((5, 6))
    for _ in range(2):
        a = one.loss_and_grads(ids[:, :-1], ids[:, 1:], h0)
        b = two.loss_and_grads(ids[:, :-1], ids[:, 1:], h0)
        assert_same_loss_and_grads(a, b)
    two.params["dense/bias"] += 1.0                  # the slices share the model's parameters
    assert all(np.array_equal(part.params["dense/bias"], two.model.params["dense/bias"]) for part in two._slices)
    with pytest.raises(ValueError, match="fast=True"):
        SplitBatch(CharRNN(9, 6), threads=2)
