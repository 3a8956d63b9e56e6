"""Text to token ids, one small interface over the two tokenisers a vision-language run uses.

- A pretrained text encoder's own tokeniser, read from a local transformers directory
  (``AutoTokenizer.from_pretrained(local_dir)``; nothing is downloaded).
- Otherwise a word-level vocabulary built from the training text with the ``tokenizers``
  library: lower-cased, accents stripped, split on whitespace and punctuation, with the special
  tokens ``[PAD]=0``, ``[UNK]=1``, ``[CLS]=2``, ``[SEP]=3``. It is saved as ``tokenizer.json``
  in the run folder, so a resumed or evaluated run reads its own vocabulary, never one rebuilt
  from text that may have changed.

Either way `TextTokenizer.encode` returns ``[CLS] tokens [SEP]`` (the pretrained tokeniser's
own markers) cut to ``max_length`` ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The word-level vocabulary's special tokens; their ids are their positions.
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
WORD_LEVEL_FILE = "tokenizer.json"
# What transformers' save_pretrained always writes, and a word-level folder never holds.
PRETRAINED_MARKER = "tokenizer_config.json"


class TextTokenizer:
    """Token ids of texts, from a word-level ``tokenizers.Tokenizer`` or a transformers tokeniser.

    Build one with `train_word_level`, `from_pretrained` or `load`. ``pad_id`` is the id a
    collate pads with (0 for the word level) and ``vocab_size`` sizes a text embedding.

    Args:
        backend: a ``tokenizers.Tokenizer`` (word level) or a transformers tokeniser.
    """

    def __init__(self, backend: Any) -> None:
        from tokenizers import Tokenizer

        self.backend = backend
        self.word_level = isinstance(backend, Tokenizer)
        if self.word_level:
            ids = [backend.token_to_id(t) for t in SPECIAL_TOKENS]
            if ids != list(range(len(SPECIAL_TOKENS))):
                raise ValueError(
                    f"a word-level vocabulary must hold {', '.join(SPECIAL_TOKENS)} as ids 0..3, "
                    f"this one has ids {ids}; build it with TextTokenizer.train_word_level"
                )
            self.pad_id = ids[0]
            self._cls_id, self._sep_id = ids[2], ids[3]
            self.vocab_size = backend.get_vocab_size()
        else:
            if backend.pad_token_id is None:
                raise ValueError(
                    f"the tokeniser {type(backend).__name__} has no padding token; give it one "
                    "(tokenizer.pad_token = ...) and save it again, or use a word-level vocabulary"
                )
            self.pad_id = int(backend.pad_token_id)
            self.vocab_size = len(backend)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def train_word_level(cls, texts: Iterable[str], min_frequency: int = 1) -> TextTokenizer:
        """A word-level vocabulary of every word seen at least ``min_frequency`` times.

        Args:
            texts: the training questions or captions (never validation text).
            min_frequency: rarer words map to ``[UNK]``.
        """
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        if min_frequency < 1:
            raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
        backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        backend.normalizer = normalizers.Sequence(
            [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
        )
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        # The trainer gives the special tokens the first ids, in order, then ranks words by
        # frequency (ties by text): the same texts always give the same ids.
        trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS),
                                            min_frequency=min_frequency, show_progress=False)
        backend.train_from_iterator(texts, trainer)
        return cls(backend)

    @classmethod
    def from_pretrained(cls, local_dir: str | Path) -> TextTokenizer:
        """The tokeniser saved in a local transformers directory (no download is tried).

        Args:
            local_dir: a folder written by ``save_pretrained`` (``tokenizer_config.json`` and
                the vocabulary files).
        """
        from transformers import AutoTokenizer

        path = Path(local_dir).expanduser()
        if not (path / PRETRAINED_MARKER).is_file():
            raise FileNotFoundError(
                f"{path} holds no {PRETRAINED_MARKER}; point to the local folder of a saved "
                "transformers tokeniser (tokenizer.save_pretrained(folder))"
            )
        return cls(AutoTokenizer.from_pretrained(str(path), local_files_only=True))

    @classmethod
    def load(cls, folder: str | Path) -> TextTokenizer:
        """The tokeniser `save` wrote to ``folder``.

        Args:
            folder: a run's tokeniser folder.
        """
        from tokenizers import Tokenizer

        path = Path(folder).expanduser()
        if (path / PRETRAINED_MARKER).is_file():
            return cls.from_pretrained(path)
        if (path / WORD_LEVEL_FILE).is_file():
            return cls(Tokenizer.from_file(str(path / WORD_LEVEL_FILE)))
        raise FileNotFoundError(f"{path} holds neither {PRETRAINED_MARKER} nor {WORD_LEVEL_FILE}; "
                                "pass the folder TextTokenizer.save wrote")

    def save(self, folder: str | Path) -> Path:
        """Write the vocabulary to ``folder`` (created), readable by `load`.

        Args:
            folder: usually the run folder's ``tokenizer/``.
        """
        path = Path(folder).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        if self.word_level:
            self.backend.save(str(path / WORD_LEVEL_FILE))
        else:
            self.backend.save_pretrained(str(path))
        return path

    # -- use ------------------------------------------------------------------------------
    def encode(self, text: str, max_length: int) -> list[int]:
        """``[CLS] tokens [SEP]`` ids of ``text``, at most ``max_length`` of them.

        Args:
            text: one question or caption.
            max_length: the longest sequence kept, special tokens included.
        """
        if max_length < 3:
            raise ValueError(f"max_length must leave room for [CLS], a token and [SEP], got {max_length}")
        if self.word_level:
            ids = self.backend.encode(text, add_special_tokens=False).ids[: max_length - 2]
            return [self._cls_id, *ids, self._sep_id]
        return list(self.backend(text, truncation=True, max_length=max_length)["input_ids"])

    def __repr__(self) -> str:
        kind = "word-level" if self.word_level else type(self.backend).__name__
        return f"TextTokenizer({kind}, vocab_size={self.vocab_size}, pad_id={self.pad_id})"


__all__ = ["SPECIAL_TOKENS", "TextTokenizer"]
