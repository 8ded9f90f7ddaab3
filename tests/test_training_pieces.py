"""Loss, dense readout, clipping, optimizers, the char model and the baselines."""

import math

import numpy as np
import pytest

from rnncourse.baselines import majority_class_accuracy, ngram_cross_entropy, uniform_cross_entropy
from rnncourse.charmodel import CharRNN
from rnncourse.gradcheck import gradient_check, numerical_gradient, rel_error
from rnncourse.layers import dense_backward, dense_forward, one_hot
from rnncourse.losses import mean_squared_error, softmax_cross_entropy
from rnncourse.optim import SGD, Adagrad, Adam, clip_by_global_norm, clip_by_value, global_norm
from rnncourse.progress import Progress

TOL = 1e-6


@pytest.mark.parametrize("use_mask", [False, True])
def test_softmax_cross_entropy_gradient(rng, use_mask):
    logits = rng.standard_normal((3, 4, 6))
    targets = rng.integers(0, 6, size=(3, 4))
    mask = rng.random((3, 4)) < 0.7 if use_mask else None
    if use_mask:
        mask[0, 0] = True
    loss, dlogits = softmax_cross_entropy(logits, targets, mask)
    num = numerical_gradient(lambda: softmax_cross_entropy(logits, targets, mask)[0], logits)
    assert rel_error(dlogits, num) < TOL
    if use_mask:
        assert np.all(dlogits[~mask] == 0)


def test_cross_entropy_of_uniform_logits_is_log_v():
    loss, _ = softmax_cross_entropy(np.zeros((2, 5, 7)), np.zeros((2, 5), dtype=int))
    assert loss == pytest.approx(math.log(7))


def test_cross_entropy_errors(rng):
    logits = rng.standard_normal((2, 3, 4))
    with pytest.raises(TypeError, match="integer class ids"):
        softmax_cross_entropy(logits, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\)"):
        softmax_cross_entropy(logits, np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        softmax_cross_entropy(logits, np.full((2, 3), 4))
    with pytest.raises(ValueError, match="selects no position"):
        softmax_cross_entropy(logits, np.zeros((2, 3), dtype=int), np.zeros((2, 3), bool))


def test_dense_and_mse_gradients(rng):
    h, kernel, bias = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    target = rng.standard_normal((2, 3, 5))

    def f():
        return mean_squared_error(dense_forward(h, kernel, bias)[0], target)[0]

    out, cache = dense_forward(h, kernel, bias)
    _, dout = mean_squared_error(out, target)
    dh, dk, db = dense_backward(dout, cache)
    errors = gradient_check(f, {"h": h, "kernel": kernel, "bias": bias}, {"h": dh, "kernel": dk, "bias": db})
    assert max(errors.values()) < TOL, errors
    with pytest.raises(ValueError, match=r"kernel must have shape \(H, V\) = \(4, \?\)"):
        dense_forward(h, kernel.T, bias)


def test_one_hot():
    assert one_hot(np.array([[0, 2]]), 3).tolist() == [[[1, 0, 0], [0, 0, 1]]]
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\)"):
        one_hot(np.array([3]), 3)
    with pytest.raises(TypeError):
        one_hot(np.array([0.0]), 3)


def test_char_rnn_whole_model_gradient(rng):
    """Gradient check through embedding, 6 steps of recurrence, readout and loss, from a carried state."""
    model = CharRNN(vocab_size=5, hidden_size=4, seed=3)
    for name in model.params:  # non-zero biases so their gradients are exercised from a generic point
        model.params[name] += 0.1 * rng.standard_normal(model.params[name].shape)
    inputs, targets = rng.integers(0, 5, size=(2, 6)), rng.integers(0, 5, size=(2, 6))
    h0 = rng.standard_normal((2, 4)) * 0.5
    loss, grads, h_last = model.loss_and_grads(inputs, targets, h0)
    errors = gradient_check(lambda: model.loss(inputs, targets, h0), model.params, grads)
    assert max(errors.values()) < TOL, errors
    assert h_last.shape == (2, 4)


def test_char_rnn_starts_near_log_v_and_samples(rng):
    model = CharRNN(vocab_size=30, hidden_size=16, seed=0)
    loss = model.loss(rng.integers(0, 30, size=(4, 20)), rng.integers(0, 30, size=(4, 20)))
    assert abs(loss - math.log(30)) < 0.15
    ids = model.sample([1, 2], 10, np.random.default_rng(0), temperature=0.5)
    assert ids.shape == (10,) and ids.min() >= 0 and ids.max() < 30
    with pytest.raises(ValueError, match="integer character ids"):
        model.loss(np.zeros((2, 3)), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="temperature must be positive"):
        model.sample([1], 3, np.random.default_rng(0), temperature=0)


def test_clipping(rng):
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(grads) == pytest.approx(5.0)
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0) and global_norm(clipped) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])  # direction kept
    unchanged, _ = clip_by_global_norm(grads, 10.0)
    np.testing.assert_array_equal(unchanged["b"], grads["b"])
    np.testing.assert_array_equal(clip_by_value(grads, 3.5)["b"], [[3.5]])
    with pytest.raises(FloatingPointError):
        clip_by_global_norm({"a": np.array([np.nan])}, 1.0)
    with pytest.raises(ValueError):
        clip_by_global_norm(grads, 0.0)


@pytest.mark.parametrize("optimizer", [SGD(0.1), SGD(0.05, momentum=0.9), Adagrad(0.5), Adam(0.1)])
def test_optimizers_minimise_a_quadratic(optimizer):
    params = {"w": np.array([3.0, -2.0])}
    for _ in range(300):
        optimizer.step(params, {"w": 2 * params["w"]})
    assert np.abs(params["w"]).max() < 0.05


def test_optimizer_rejects_mismatched_grads():
    with pytest.raises(ValueError, match="grad 'w' has shape"):
        SGD().step({"w": np.zeros(2)}, {"w": np.zeros(3)})


def test_ngram_baselines():
    train = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    assert uniform_cross_entropy(4) == pytest.approx(math.log(4))
    # Unigram with add-one: p(0) = p(1) = 5/12.
    assert ngram_cross_entropy(train, np.array([0, 1]), 4, order=1) == pytest.approx(-math.log(5 / 12))
    # A bigram model learns the alternation, so it beats the unigram model on the same text.
    assert ngram_cross_entropy(train, train, 4, order=2) < ngram_cross_entropy(train, train, 4, order=1)
    assert majority_class_accuracy([1, 1, 0], [1, 0, 1, 1]) == 0.75


def test_progress_prints_fixed_lines(capsys):
    p = Progress(100, lines=4)
    printed = [s for s in range(1, 101) if p.update(s, loss=1.0)]
    assert printed == [25, 50, 75, 100]
    assert capsys.readouterr().out.splitlines()[0].startswith("[#####...............]  25%  step  25/100  loss 1.0000")


def test_seeds_trained_side_by_side_equal_seeds_trained_here_bit_for_bit():
    from rnncourse.charmodel import CharRNN
    from rnncourse.optim import Adam
    from rnncourse.train import train_char_model, train_char_models

    ids = np.random.default_rng(0).integers(0, 7, 3_000)
    settings = dict(steps=12, batch_size=4, seq_len=10, clip_norm=5.0, eval_every=12, eval_chars=2_000)
    side_by_side = train_char_models([2, 1], 7, 8, ids, ids[:2_500], learning_rate=0.01, processes=2, **settings)
    for seed, model in zip([2, 1], side_by_side):
        here = CharRNN(7, hidden_size=8, seed=seed, fast=True)
        train_char_model(here, ids, ids[:2_500], Adam(learning_rate=0.01), progress_lines=1, **settings)
        assert model.params.keys() == here.params.keys()
        for name in here.params:
            np.testing.assert_array_equal(model.params[name], here.params[name])
    assert not np.array_equal(side_by_side[0].params["rnn/kernel"], side_by_side[1].params["rnn/kernel"])
    with pytest.raises(ValueError, match="seeds must be"):
        train_char_models([], 7, 8, ids, ids, learning_rate=0.01)
