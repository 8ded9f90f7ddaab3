"""Chapter 7's package code: the IMDB and Chinese review loaders (offline, fixed splits), the
text baselines, the classification metrics, and the Keras sentiment models (masking)."""

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import numpy as np
import pytest

from rnncourse.baselines.text import char_ngram_logreg, majority_class_predict, tfidf_logreg
from rnncourse.data.chinese_reviews import characters, load_chinese_reviews, load_chinese_split, raw_counts
from rnncourse.data.imdb import (OOV, PAD, WordVocab, dedupe, encode_padded, load_imdb_reviews, load_imdb_split,
                                 stratified_split, tokenize)
from rnncourse.metrics import accuracy, classification_report, confusion_matrix, f1_score, precision, recall


# ----------------------------------------------------------------------------- loaders

@pytest.fixture(scope="module")
def imdb():
    return load_imdb_split()


def test_imdb_deduplicated_and_split_fixed(imdb):
    texts, labels = load_imdb_reviews()
    assert len(texts) == len(set(texts)) == 24_904
    assert set(np.unique(labels)) == {0, 1}
    assert imdb.sizes() == {"train": 17_404, "validation": 2_500, "test": 5_000}
    parts = [set(imdb.train_texts), set(imdb.val_texts), set(imdb.test_texts)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    # stratified: every part keeps the overall positive share to within one review
    share = labels.mean()
    for y in (imdb.val_labels, imdb.test_labels):
        assert abs(y.sum() - share * len(y)) <= 1
    again = load_imdb_split()
    assert again.test_texts[:3] == imdb.test_texts[:3] and np.array_equal(again.train_labels, imdb.train_labels)


def test_stratified_split_properties_and_errors():
    labels = np.array([0] * 70 + [1] * 30)
    tr, va, te = stratified_split(labels, 10, 20, seed=1)
    assert len(va) == 10 and len(te) == 20 and len(tr) == 70
    assert labels[va].sum() == 3 and labels[te].sum() == 6
    assert len(np.unique(np.concatenate([tr, va, te]))) == 100
    tr2, _, _ = stratified_split(labels, 10, 20, seed=2)
    assert not np.array_equal(tr, tr2)
    with pytest.raises(ValueError, match="n_val"):
        stratified_split(labels, 0, 20, seed=1)
    with pytest.raises(ValueError, match="leave training data"):
        stratified_split(labels, 50, 50, seed=1)
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((3, 2)), 1, 1, seed=1)


def test_dedupe_drops_conflicting_labels():
    texts, labels = dedupe([("a", 1), ("b", 0), ("a", 1), ("c", 1), ("c", 0)])
    assert texts == ["a", "b"] and labels.tolist() == [1, 0]


def test_chinese_reviews_cleaned():
    counts = raw_counts()
    assert counts == {"pos": 16_548, "neg": 18_576}
    texts, labels, report = load_chinese_reviews()
    assert len(texts) == len(set(texts)) == report["kept"]
    assert report["in both classes"] == 47
    pos = {t for t, y in zip(texts, labels) if y == 1}
    neg = {t for t, y in zip(texts, labels) if y == 0}
    assert not (pos & neg) and "" not in pos | neg
    split = load_chinese_split()
    assert split.sizes()["test"] == 4_000 and split.sizes()["validation"] == 2_000
    assert not set(split.train_texts) & set(split.test_texts)
    assert characters("好 看\n的") == ["好", "看", "的"]


def test_tokenize_vocab_and_padding():
    assert tokenize("Great<br />film, isn't it? 10/10") == ["great", "film", "isn't", "it", "10", "10"]
    with pytest.raises(TypeError, match="text must be a str"):
        tokenize(3)
    vocab = WordVocab([["a", "b", "a"], ["c", "a", "b"]], max_size=4)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b"] and vocab.size == 4
    X = encode_padded([["a", "b", "c"], ["b"]], vocab, maxlen=2)
    assert X.dtype == np.int32 and X.tolist() == [[3, OOV], [3, PAD]]  # keeps the last two tokens
    assert encode_padded([["a", "b", "c"]], vocab, maxlen=2, truncating="post").tolist() == [[2, 3]]
    with pytest.raises(ValueError, match="maxlen"):
        encode_padded([["a"]], vocab, maxlen=0)
    with pytest.raises(ValueError, match="max_size"):
        WordVocab([["a"]], max_size=2)


# ----------------------------------------------------------------------------- metrics

def test_metrics_definitions():
    y_true = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0])
    assert confusion_matrix(y_true, y_pred).tolist() == [[4, 2], [1, 3]]  # [[TN, FP], [FN, TP]]
    assert accuracy(y_true, y_pred) == pytest.approx(0.7)
    assert precision(y_true, y_pred) == pytest.approx(3 / 5)
    assert recall(y_true, y_pred) == pytest.approx(3 / 4)
    assert f1_score(y_true, y_pred) == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
        assert np.array_equal(confusion_matrix(a, b), sk.confusion_matrix(a, b, labels=[0, 1]))
        report = classification_report(a, b)
        assert report["precision"] == pytest.approx(sk.precision_score(a, b))
        assert report["recall"] == pytest.approx(sk.recall_score(a, b))
        assert report["f1"] == pytest.approx(sk.f1_score(a, b))


def test_metrics_bad_input_and_zero_division():
    with pytest.raises(ValueError, match="same length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="only the labels 0 and 1"):
        precision([0, 2], [0, 1])
    with pytest.raises(TypeError, match="threshold probabilities"):
        recall([0, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="1-D"):
        f1_score([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ZeroDivisionError, match="precision"):
        precision([0, 1], [0, 0])
    assert precision([0, 1], [0, 0], zero_division=0.0) == 0.0
    assert accuracy([True, False], [True, True]) == 0.5


# ----------------------------------------------------------------------------- baselines

def test_baselines_small():
    assert majority_class_predict([0, 1, 1], 4).tolist() == [1, 1, 1, 1]
    assert majority_class_predict([0, 1], 2).tolist() == [0, 0]  # tie: the smaller label
    with pytest.raises(ValueError, match="non-empty"):
        majority_class_predict([], 3)
    texts = ["good great film", "great good", "bad awful film", "awful bad bad"] * 5
    labels = [1, 1, 0, 0] * 5
    model = tfidf_logreg(texts, labels, tokenizer=str.split, min_df=1)
    assert model.predict(["great film", "awful"]).tolist() == [1, 0]
    chars = char_ngram_logreg(["好好看", "很好", "很差", "差劲"] * 5, [1, 1, 0, 0] * 5, min_df=1)
    assert chars.predict(["好", "差"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="same length"):
        tfidf_logreg(texts, labels[:3], tokenizer=str.split)
    with pytest.raises(ValueError, match="C "):
        tfidf_logreg(texts, labels, tokenizer=str.split, C=0)


# ----------------------------------------------------------------------------- Keras models

def test_masked_classifier_ignores_padding():
    import keras

    from rnncourse.keras_models.sentiment import build_classifier, predict_proba

    keras.utils.set_random_seed(0)
    rows = np.array([[5, 3, 9, 2, 0, 0], [7, 7, 1, 4, 8, 6]], dtype=np.int32)
    longer = np.concatenate([rows, np.zeros((2, 10), dtype=np.int32)], axis=1)
    for kind in ("simple_rnn", "lstm", "gru", "bilstm"):
        for pooling in ("last", "mean", "mean_max"):
            model = build_classifier(kind, vocab_size=10, embed_dim=4, units=3, pooling=pooling)
            a, b = predict_proba(model, rows), predict_proba(model, longer)
            c = predict_proba(model, longer, batch_size=1, by_length=True)
            assert a.shape == (2,) and np.allclose(a, b, atol=1e-6), (kind, pooling)
            assert np.allclose(a, c, atol=1e-6), (kind, pooling, "by_length")
    unmasked = build_classifier("gru", vocab_size=10, embed_dim=4, units=3, mask=False)
    assert not np.allclose(predict_proba(unmasked, rows), predict_proba(unmasked, longer), atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        build_classifier("transformer", 10)
    with pytest.raises(ValueError, match="dropout"):
        build_classifier("lstm", 10, dropout=1.0)
    with pytest.raises(ValueError, match="2-D"):
        predict_proba(model, rows[0])


def test_predict_proba_compiled_matches_eager_call():
    import keras

    from rnncourse.keras_models.sentiment import _forward, build_classifier, predict_proba

    keras.utils.set_random_seed(0)
    X = np.array([[5, 3, 9, 2, 0, 0], [7, 7, 1, 4, 8, 6], [2, 0, 0, 0, 0, 0]], dtype=np.int32)
    model = build_classifier("bilstm", vocab_size=10, embed_dim=4, units=3, pooling="mean_max")
    eager = keras.ops.convert_to_numpy(model(X, training=False))[:, 0]
    assert np.allclose(predict_proba(model, X), eager, atol=1e-6)
    assert np.allclose(predict_proba(model, X, batch_size=2, by_length=True), eager, atol=1e-6)
    assert _forward(model, X.dtype).experimental_get_tracing_count() == 1  # every width, one graph
    twin = build_classifier("bilstm", vocab_size=10, embed_dim=4, units=3, pooling="mean_max")
    model.set_weights(twin.get_weights())  # the compiled pass reads the current weights
    assert np.allclose(predict_proba(model, X), keras.ops.convert_to_numpy(twin(X))[:, 0], atol=1e-6)
    assert np.allclose(predict_proba(model, X.astype(np.int64)), predict_proba(twin, X), atol=1e-6)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            predict_proba(model, X, batch_size=bad)
    import gc
    import weakref

    gone = weakref.ref(twin)
    predict_proba(twin, X)
    del twin
    gc.collect()
    assert gone() is None  # the cache of compiled passes does not keep a model alive


def test_masked_mean_max_pooling():
    import keras

    from rnncourse.keras_models.sentiment import MaskedMeanMax

    states = np.array([[[1.0, -2.0], [3.0, -4.0], [9.0, 9.0]],
                       [[-1.0, -5.0], [0.0, 0.0], [0.0, 0.0]]], dtype="float32")
    mask = np.array([[True, True, False], [True, False, False]])
    out = keras.ops.convert_to_numpy(MaskedMeanMax()(states, mask=mask))
    # mean then max over the real steps only: the padded 9s and 0s take no part
    assert np.allclose(out, [[2.0, -3.0, 3.0, -2.0], [-1.0, -5.0, -1.0, -5.0]])
    empty = keras.ops.convert_to_numpy(MaskedMeanMax()(states, mask=np.zeros((2, 3), bool)))
    assert np.allclose(empty, 0.0)
    assert np.allclose(keras.ops.convert_to_numpy(MaskedMeanMax()(states))[0], [13 / 3, 1.0, 9.0, 9.0])


def test_length_batches_cover_every_row_once_and_trim_padding():
    from rnncourse.keras_models.sentiment import LengthBatches, real_lengths

    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 30, size=103)
    X = np.zeros((103, 30), dtype=np.int32)
    for i, n in enumerate(lengths):
        X[i, :n] = rng.integers(1, 50, size=n)
    assert real_lengths(X).tolist() == lengths.tolist()
    assert real_lengths(np.zeros((2, 4), dtype=np.int32)).tolist() == [0, 0]
    y = np.arange(103) % 2
    data = LengthBatches(X, y, batch_size=8, seed=3, chunk=4)
    for _ in range(2):  # two epochs: a fresh, seeded order each time
        seen = np.concatenate(data.batches)
        assert sorted(seen.tolist()) == list(range(103)) and len(data) == len(data.batches)
        for k in range(len(data)):
            xb, yb = data[k]
            rows = data.batches[k]
            assert xb.shape == (len(rows), lengths[rows].max()) and np.array_equal(xb, X[rows, :xb.shape[1]])
            assert np.array_equal(yb, y[rows].astype("float32"))
        first = [b.tolist() for b in data.batches]
        data.on_epoch_end()
    assert [b.tolist() for b in data.batches] != first
    same = LengthBatches(X, y, batch_size=8, seed=3, chunk=4)
    assert [b.tolist() for b in same.batches] == [b.tolist() for b in LengthBatches(X, y, 8, 3, 4).batches]
    ordered = LengthBatches(X, y, batch_size=8, shuffle=False)
    assert np.all(np.diff(lengths[np.concatenate(ordered.batches)]) >= 0)
    with pytest.raises(ValueError, match="batch_size"):
        LengthBatches(X, y, batch_size=0)
    with pytest.raises(ValueError, match="same"):
        LengthBatches(X, y[:5], batch_size=8)


def test_fit_select_restores_best_epoch():
    import keras

    from rnncourse.keras_models.sentiment import build_classifier, fit_select

    rng = np.random.default_rng(0)
    X = rng.integers(1, 20, size=(64, 5)).astype(np.int32)
    y = (X[:, 0] < 10).astype(np.int64)
    model = build_classifier("simple_rnn", vocab_size=20, embed_dim=4, units=3)
    result = fit_select(model, X, y, X[:16], y[:16], epochs=3, verbose=False)
    val = result["history"]["val_accuracy"]
    assert len(val) == 3 and result["best_epoch"] == int(np.argmax(val)) + 1
    assert result["best_val_accuracy"] == pytest.approx(max(val))
    with pytest.raises(ValueError, match="epochs"):
        fit_select(model, X, y, X, y, epochs=0)
    X = np.concatenate([X, np.zeros((64, 3), dtype=np.int32)], axis=1)
    X[:8, 5:] = 7  # the first batches are full width, later ones shorter: widths must not be fixed
    X[8:, 3:][rng.random((56, 5)) < 0.5] = 0  # ragged post-padding
    pooled = build_classifier("bilstm", vocab_size=20, embed_dim=4, units=3, pooling="mean_max")
    result = fit_select(pooled, X, y, X[:16], y[:16], epochs=2, batch_size=8, verbose=False, by_length=True)
    assert len(result["history"]["val_accuracy"]) == 2 and 1 <= result["best_epoch"] <= 2
    assert isinstance(keras.__version__, str)


def test_tfidf_chooses_C_on_validation():
    texts = ["good great film", "great good", "bad awful film", "awful bad bad"] * 5
    labels = [1, 1, 0, 0] * 5
    with pytest.warns(UserWarning, match="may lie beyond them"):   # of two values, either is at an end
        model = tfidf_logreg(texts, labels, tokenizer=str.split, min_df=1, C=(0.01, 10.0),
                             val_texts=["good", "bad"], val_labels=[1, 0])
    assert model.C_ in (0.01, 10.0) and set(model.val_accuracy_) == {0.01, 10.0}
    assert model.val_accuracy_[model.C_] == max(model.val_accuracy_.values())
    with pytest.raises(ValueError, match="needs val_texts"):
        tfidf_logreg(texts, labels, tokenizer=str.split, C=(1.0, 2.0))


def test_tfidf_warns_only_when_the_chosen_C_is_at_an_end_of_the_grid():
    # Every candidate separates these validation reviews, so all tie and the first listed is
    # kept: the warning must depend on the chosen value's place among the values, not in the list.
    texts = ["good great film", "great good", "bad awful film", "awful bad bad"] * 5
    labels = [1, 1, 0, 0] * 5
    val = dict(val_texts=["good", "bad"], val_labels=[1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # any warning fails the test
        inside = tfidf_logreg(texts, labels, tokenizer=str.split, min_df=1, C=(1.0, 0.001, 100.0), **val)
        single = tfidf_logreg(texts, labels, tokenizer=str.split, min_df=1, C=1.0, **val)
    assert inside.C_ == 1.0 and set(inside.val_accuracy_.values()) == {1.0}
    assert single.C_ == 1.0
    with pytest.warns(UserWarning, match=r"C = 100 is the largest of the candidates \(100\.0, 0\.001\)"):
        tfidf_logreg(texts, labels, tokenizer=str.split, min_df=1, C=(100.0, 0.001), **val)
    with pytest.warns(UserWarning, match=r"C = 0\.001 is the smallest"):
        char_ngram_logreg(texts, labels, min_df=1, C=(0.001, 1.0, 100.0), **val)
