import numpy as np
import pytest

from rnncourse.baselines.ngram import ngram_cross_entropy
from rnncourse.baselines.char_ngram import ngram_cross_entropies


def test_matches_the_dictionary_version():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 6, size=3000)
    evals = rng.integers(0, 6, size=400)
    fast = ngram_cross_entropies(train, evals, 6, orders=(1, 2, 3, 4, 5), alpha=0.1)
    for order, value in fast.items():
        assert value == pytest.approx(ngram_cross_entropy(train, evals, 6, order=order, alpha=0.1), rel=1e-12)


def test_unseen_symbols_and_lists():
    fast = ngram_cross_entropies([0, 1, 0, 1, 0], [2, 2, 2], 3, orders=(1, 2), alpha=1.0)
    assert fast[1] == pytest.approx(ngram_cross_entropy([0, 1, 0, 1, 0], [2, 2, 2], 3, order=1, alpha=1.0))
    assert fast[2] == pytest.approx(ngram_cross_entropy([0, 1, 0, 1, 0], [2, 2, 2], 3, order=2, alpha=1.0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(vocab_size=0), "vocab_size"),
    (dict(alpha=0), "alpha"),
    (dict(orders=(0,)), "order"),
    (dict(orders=(40,)), "int64"),
    (dict(eval_ids=[0.5, 1.0]), "eval_ids"),
    (dict(train_ids=[0, 9]), "train_ids"),
])
def test_bad_input(kwargs, message):
    args = dict(train_ids=[0, 1, 2, 1], eval_ids=[1, 2, 0], vocab_size=3, orders=(1, 2), alpha=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ngram_cross_entropies(**args)
