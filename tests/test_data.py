import numpy as np
import pytest

from rnncourse.data import CharVocab, load_shakespeare, shakespeare_play_names, stream_batches


def test_plays_load_offline_and_clean():
    names = shakespeare_play_names()
    assert len(names) == 38 and "hamlet" in names
    text = load_shakespeare(["hamlet"])
    assert text.startswith("BERNARDO:\nWho's there?")
    assert "**" not in text and "#" not in text and "  \n" not in text


def test_unknown_play():
    with pytest.raises(ValueError, match="unknown play"):
        load_shakespeare(["hamlett"])


def test_vocab_round_trip():
    vocab = CharVocab.from_text("hello world")
    ids = vocab.encode("hello")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "hello" and vocab.size == 8
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("xyz")


def test_stream_batches_continue_each_row():
    ids = np.arange(41)
    batches = list(stream_batches(ids, batch_size=2, seq_len=5))
    assert len(batches) == 4
    x0, y0 = batches[0]
    x1, _ = batches[1]
    assert x0.tolist() == [[0, 1, 2, 3, 4], [20, 21, 22, 23, 24]]
    assert np.array_equal(y0, x0 + 1)
    assert x1[:, 0].tolist() == [5, 25]  # row b of window k+1 continues row b of window k
    with pytest.raises(ValueError, match="too few"):
        list(stream_batches(np.arange(5), 2, 5))
