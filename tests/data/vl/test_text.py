"""The text tokeniser: a word-level vocabulary of the training text, or a local pretrained one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm4vis.data.vl.text import SPECIAL_TOKENS, TextTokenizer

TRAIN = ["What colour is the Café?", "what shape is it", "Is there a circle left of it?"]


def test_word_level_ids() -> None:
    tok = TextTokenizer.train_word_level(TRAIN)
    assert [tok.backend.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert tok.pad_id == 0
    # 'is' x3, 'it' x2, 'what' x2, '?' x2 first, then once-seen words by text
    ids = tok.encode("WHAT is the zebra cafe?", max_length=40)
    vocab = tok.backend.get_vocab()
    assert ids == [2, vocab["what"], vocab["is"], vocab["the"], 1, vocab["cafe"], vocab["?"], 3]
    assert vocab["is"] == 4  # the most frequent word right after the special tokens
    assert tok.vocab_size == len(vocab)


@pytest.mark.parametrize("max_length, expected_words", [(3, 1), (5, 3), (40, 4)])
def test_truncation_keeps_the_markers(max_length: int, expected_words: int) -> None:
    tok = TextTokenizer.train_word_level(TRAIN)
    ids = tok.encode("what shape is it", max_length)
    assert len(ids) == expected_words + 2
    assert ids[0] == 2 and ids[-1] == 3


def test_min_frequency_maps_rare_words_to_unk() -> None:
    tok = TextTokenizer.train_word_level(TRAIN, min_frequency=2)
    assert tok.encode("shape", 10) == [2, 1, 3]
    assert tok.encode("is", 10) != [2, 1, 3]


def test_saved_vocabulary_reloads_with_the_same_ids(tmp_path: Path) -> None:
    tok = TextTokenizer.train_word_level(TRAIN)
    folder = tok.save(tmp_path / "run" / "tokenizer")
    again = TextTokenizer.load(folder)
    assert again.word_level and again.vocab_size == tok.vocab_size
    for text in [*TRAIN, "an unseen sentence?"]:
        assert again.encode(text, 12) == tok.encode(text, 12)


def _local_bert_tokenizer(folder: Path) -> Path:
    """A tiny BERT tokeniser saved by transformers, as a pretrained text encoder's folder holds it."""
    from transformers import BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "is", "red", "?"]
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(folder)
    return folder


def test_pretrained_from_a_local_folder(tmp_path: Path) -> None:
    tok = TextTokenizer.from_pretrained(_local_bert_tokenizer(tmp_path / "bert"))
    assert not tok.word_level and tok.pad_id == 0 and tok.vocab_size == 9
    assert tok.encode("What is RED?", 40) == [2, 5, 6, 7, 8, 3]
    assert tok.encode("What is RED?", 4) == [2, 5, 6, 3]
    again = TextTokenizer.load(tok.save(tmp_path / "run" / "tokenizer"))
    assert again.encode("what is red", 40) == tok.encode("what is red", 40)


def test_pretrained_without_padding_token_is_refused(tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    word = TextTokenizer.train_word_level(TRAIN).backend
    PreTrainedTokenizerFast(tokenizer_object=word).save_pretrained(tmp_path / "nopad")
    with pytest.raises(ValueError, match="no padding token"):
        TextTokenizer.from_pretrained(tmp_path / "nopad")


@pytest.mark.parametrize("make", [TextTokenizer.load, TextTokenizer.from_pretrained])
def test_empty_folder_is_named(tmp_path: Path, make) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        make(tmp_path)


def test_max_length_too_short() -> None:
    with pytest.raises(ValueError, match="max_length"):
        TextTokenizer.train_word_level(TRAIN).encode("what", 2)
