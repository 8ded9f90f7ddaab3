"""Chapter 8's pieces: the by-play split, fast n-gram counts, temperature and entropy, and the
Keras character LSTM's state handling (stateful training, state passing, generation)."""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import numpy as np
import pytest

from rnncourse.baselines.char_ngram import ngram_log_probs
from rnncourse.baselines.ngram import ngram_cross_entropy
from rnncourse.data.splits import split_by_play, unseen_characters, whole_windows
from rnncourse.data.shakespeare import stream_batches
from rnncourse.sampling import (cross_entropy_nats, entropy_bits, log_softmax_t, nats_to_bits, sample_inverse_cdf,
                                temperature_probs)


# ------------------------------------------------------------------------------ the split
def test_split_holds_out_hamlet_like_chapter_3():
    split = split_by_play()
    assert split.held_out_plays == ("hamlet",) and len(split.train_plays) == 37 and "hamlet" not in split.train_plays
    assert len(split.train_ids) == 4_658_366 and len(split.held_out_ids) == 172_120 and split.vocab.size == 79
    assert split.vocab.decode(split.held_out_ids[:9]) == "BERNARDO:"
    assert isinstance(unseen_characters(split), list)


def test_split_with_named_training_plays():
    split = split_by_play(held_out=["hamlet"], train=["macbeth"])
    assert split.train_plays == ("macbeth",) and 0 < len(split.train_ids) < 200_000


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(held_out="hamlet"), TypeError, "list or tuple"),
    (dict(held_out=["hamlett"]), ValueError, "held_out must name"),
    (dict(held_out=[]), ValueError, "held_out must name"),
    (dict(held_out=["hamlet"], train=["hamlet"]), ValueError, "both trained on and held out"),
    (dict(held_out=["hamlet"], train="macbeth"), TypeError, "list or tuple"),
])
def test_split_refuses_bad_play_lists(kwargs, error, match):
    with pytest.raises(error, match=match):
        split_by_play(**kwargs)


def test_whole_windows_scores_every_character_once():
    ids = np.arange(1000)
    prefix = whole_windows(ids, 4, 10)
    assert len(prefix) == 1 + 4 * 10 * 24
    targets = np.concatenate([y.ravel() for _, y in stream_batches(prefix, 4, 10)])
    assert sorted(targets.tolist()) == list(range(1, len(prefix)))
    with pytest.raises(ValueError, match="too few"):
        whole_windows(np.arange(10), 4, 10)


# ------------------------------------------------------------------------ n-gram counts
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_fast_ngram_agrees_with_the_counting_loop(order):
    rng = np.random.default_rng(order)
    train, evals = rng.integers(0, 4, 3000), rng.integers(0, 4, 200)
    fast = -ngram_log_probs(train, evals, 4, order, alpha=0.3)[order - 1:].mean()
    assert fast == pytest.approx(ngram_cross_entropy(train, evals, 4, order=order, alpha=0.3), rel=1e-12)


def test_ngram_short_history_uses_the_lower_order():
    rng = np.random.default_rng(0)
    train, evals = rng.integers(0, 5, 500), rng.integers(0, 5, 30)
    five = ngram_log_probs(train, evals, 5, 5)
    for i in range(4):
        assert five[i] == ngram_log_probs(train, evals, 5, i + 1)[i]


def test_ngram_probabilities_sum_to_one_over_the_next_character():
    rng = np.random.default_rng(1)
    train, context = rng.integers(0, 3, 400), rng.integers(0, 3, 3)
    total = sum(math.exp(ngram_log_probs(train, np.append(context, c), 3, 4, alpha=0.5)[-1]) for c in range(3))
    assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=0), "order must be"), (dict(alpha=0.0), "alpha must be positive"),
    (dict(vocab_size=0), "vocab_size"), (dict(order=40), "too high"),
])
def test_ngram_refuses_bad_settings(kwargs, match):
    args = dict(train_ids=np.arange(10) % 3, eval_ids=np.arange(5) % 3, vocab_size=3, order=2, alpha=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ngram_log_probs(**args)


def test_ngram_refuses_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match="ids in 0 .. 2"):
        ngram_log_probs(np.array([0, 1, 3]), np.array([0, 1]), 3, 1)
    with pytest.raises(ValueError, match="1-D array of integer"):
        ngram_log_probs(np.zeros((2, 3), int), np.array([0, 1]), 3, 1)


# ------------------------------------------------------------------ temperature, entropy
def test_temperature_sharpens_and_flattens():
    logits = np.array([[2.0, 1.0, 0.0, -1.0]])
    ent = [float(entropy_bits(logits, t)[0]) for t in (0.2, 0.5, 1.0, 1.2, 100.0)]
    assert all(a < b for a, b in zip(ent, ent[1:]))
    assert ent[-1] == pytest.approx(2.0, abs=1e-3)  # nearly uniform over 4: log2 4 bits
    assert temperature_probs(logits, 0.01)[0, 0] == pytest.approx(1.0)
    assert temperature_probs(logits, 1.0).sum() == pytest.approx(1.0)
    assert np.allclose(log_softmax_t(1000.0 * logits, 1000.0), log_softmax_t(logits))  # no overflow


def test_entropy_and_cross_entropy_by_hand():
    logits = np.log(np.array([[0.5, 0.25, 0.25]]))
    assert entropy_bits(logits)[0] == pytest.approx(1.5)
    assert cross_entropy_nats(logits, np.array([1]))[0] == pytest.approx(math.log(4))
    assert nats_to_bits(math.log(4)) == pytest.approx(2.0)
    assert np.allclose(nats_to_bits(np.array([math.log(2), math.log(8)])), [1.0, 3.0])


@pytest.mark.parametrize("temperature, error", [(0.0, ValueError), (-1.0, ValueError), (float("inf"), ValueError),
                                                ("1", TypeError), (True, TypeError)])
def test_temperature_must_be_positive(temperature, error):
    with pytest.raises(error, match="temperature"):
        temperature_probs(np.zeros((1, 3)), temperature)


def test_inverse_cdf_sampling():
    probs = np.array([[0.1, 0.6, 0.3]] * 4)
    got = sample_inverse_cdf(probs, np.array([0.05, 0.1, 0.69, 0.999999]))
    assert got.tolist() == [0, 1, 1, 2]
    rng = np.random.default_rng(0)
    draws = sample_inverse_cdf(np.repeat(probs[:1], 20000, axis=0), rng.random(20000))
    assert np.allclose(np.bincount(draws, minlength=3) / 20000, probs[0], atol=0.01)
    with pytest.raises(ValueError, match="uniforms"):
        sample_inverse_cdf(probs, np.zeros(3))


# ------------------------------------------------------------------------- the Keras model
@pytest.fixture(scope="module")
def charlm():
    import keras

    from rnncourse.keras_models import charlm as module

    keras.utils.set_random_seed(0)
    return module


def test_stateful_training_model_equals_state_passing(charlm):
    """Two consecutive windows through the stateful model = their concatenation through the
    state-passing model: Keras carried the state from one batch to the next."""
    model = charlm.build_char_lm(7, units=5, embedding_dim=3, batch_size=2, stateful=True)
    twin = charlm.build_state_model(7, units=5, embedding_dim=3)
    charlm.copy_weights(model, twin)
    x = np.random.default_rng(0).integers(0, 7, (2, 8)).astype(np.int32)
    charlm.reset_state(model)
    first, second = model.predict_on_batch(x[:, :4]), model.predict_on_batch(x[:, 4:])
    h, c = charlm.zero_state(2, 5)
    whole, _, _ = twin.predict_on_batch([x, h, c])
    assert np.allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    charlm.reset_state(model)
    assert np.allclose(model.predict_on_batch(x[:, 4:]), twin.predict_on_batch([x[:, 4:], h, c])[0], atol=1e-5)


def test_a_stateful_model_needs_a_batch_size(charlm):
    with pytest.raises(ValueError, match="fixed batch_size"):
        charlm.build_char_lm(7, units=5, stateful=True)
    with pytest.raises(ValueError, match="units must be a positive int"):
        charlm.build_char_lm(7, units=0)
    with pytest.raises(ValueError, match="weights differ"):
        charlm.copy_weights(charlm.build_state_model(7, 5, 3), charlm.build_state_model(7, 6, 3))


def test_stream_arrays_follow_stream_batches(charlm):
    ids = np.arange(81)
    x, y = charlm.stream_arrays(ids, 2, 5, steps=3)
    batches = list(stream_batches(ids, 2, 5))
    assert x.shape == (6, 5) and x.dtype == np.int32
    assert np.array_equal(x[2:4], batches[1][0]) and np.array_equal(y[4:6], batches[2][1])
    with pytest.raises(ValueError, match="fewer than steps"):
        charlm.stream_arrays(ids, 2, 5, steps=50)


def test_reset_each_segment_zeroes_the_state_before_every_segment(charlm, capsys):
    import keras

    ids = np.tile(np.arange(6), 60)
    x, y = charlm.stream_arrays(ids, 4, 8, steps=10)

    def fresh():
        keras.utils.set_random_seed(0)
        model = charlm.build_char_lm(6, units=8, embedding_dim=4, batch_size=4, stateful=True)
        model.compile(optimizer=keras.optimizers.Adam(0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    by_hand = fresh()
    for part in (slice(0, 20), slice(20, 40)):   # two segments of five batches, each from zeros
        charlm.reset_state(by_hand)
        by_hand.fit(x[part], y[part], batch_size=4, epochs=1, shuffle=False, verbose=0)
    reset = fresh()
    charlm.train_stateful(reset, x, y, 4, segments=2, reset_each_segment=True)
    carried = fresh()
    charlm.train_stateful(carried, x, y, 4, segments=2)
    for a, b in zip(reset.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(a, b) for a, b in zip(reset.get_weights(), carried.get_weights()))
    assert capsys.readouterr().out.count("characters") == 4


def test_training_scoring_and_generation_run(charlm, capsys):
    import keras

    ids = np.tile(np.arange(6), 60)
    model = charlm.build_char_lm(6, units=8, embedding_dim=4, batch_size=4, stateful=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = charlm.stream_arrays(ids, 4, 8, steps=10)
    losses = charlm.train_stateful(model, x, y, 4, segments=2)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert capsys.readouterr().out.count("characters") == 2
    twin = charlm.build_state_model(6, units=8, embedding_dim=4)
    charlm.copy_weights(model, twin)
    carried = charlm.score_stream(twin, ids[:81], batch_size=2, seq_len=10, temperatures=(0.5,))
    reset = charlm.score_stream(twin, ids[:81], batch_size=2, seq_len=10, carry_state=False)
    assert carried.characters == reset.characters == 80
    assert set(carried.cross_entropy) == {1.0, 0.5} and carried.nats == pytest.approx(carried.cross_entropy[1.0])
    out, ent = charlm.generate(twin, np.array([0, 1, 2]), 12, [0.5, 0.5, 1.0], seed=3)
    assert out.shape == ent.shape == (3, 12)
    assert np.array_equal(out[0], out[1])  # same temperature, same uniforms: the same text
    again, _ = charlm.generate(twin, np.array([0, 1, 2]), 12, [0.5, 0.5, 1.0], seed=3)
    assert np.array_equal(out, again)
    assert ent[0, 0] < ent[2, 0]  # same context at the first step: the lower temperature has the lower entropy
