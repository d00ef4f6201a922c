"""Tokenization and chunking of texts into model inputs (numpy only, no torch).

A text longer than the model's ``max_length`` is split into windows that fit,
cutting after a sentence end when one is in the second half of the window,
else between words, never inside a word. Every window gets its own ``[CLS]``
and ``[SEP]``; the scorer aggregates the windows' probabilities weighted by
their token counts, so nothing is silently truncated.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from tokenizers import Tokenizer

__all__ = ["EncodedText", "TextEncoder", "normalize_text", "pad_batch"]

_SENTENCE_ENDS: Final = frozenset({".", "!", "?", ";", "\n"})
_SPECIALS: Final = (("[CLS]", "[SEP]"), ("<s>", "</s>"))
_URL: Final = re.compile(r"https?://\S+|www\.\S+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACE: Final = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The text as the model was trained on it: entities decoded, URLs dropped.

    Training and scoring both call this, so they see the same text.

    >>> normalize_text("Q3 beat &amp; raise\x9d https://t.co/abc  ")
    'Q3 beat & raise'
    """
    clean = unicodedata.normalize("NFKC", html.unescape(text))
    clean = _SPACE.sub(" ", _CONTROL.sub("", _URL.sub(" ", clean))).strip()
    return clean or _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class EncodedText:
    """One text as token-id windows, each with its special tokens."""

    chunks: tuple[tuple[int, ...], ...]
    #: Tokens of the text, without special tokens.
    n_tokens: int
    #: How many of them are the tokenizer's unknown token (drift monitoring reads it).
    n_unknown: int = 0

    @property
    def n_chunks(self) -> int:
        """How many windows the text was split into."""
        return len(self.chunks)


def _cut_point(tokens: list[str], word_ids: list[int | None], start: int, end: int) -> int:
    """Where to end the window ``[start, end)``: a sentence end, else a word boundary."""
    half = start + (end - start) // 2
    for i in range(end - 1, half - 1, -1):
        if tokens[i] in _SENTENCE_ENDS:
            return i + 1
    for i in range(end, start, -1):
        if word_ids[i] is None or word_ids[i] != word_ids[i - 1]:
            return i
    return end  # one word longer than the window: cut it


def split_windows(tokens: list[str], word_ids: list[int | None], window: int) -> list[range]:
    """Split ``len(tokens)`` positions into ranges of at most ``window`` tokens.

    >>> toks = ["a", "b", ".", "c", "d", "e"]
    >>> [list(r) for r in split_windows(toks, [0, 1, 2, 3, 4, 5], 4)]
    [[0, 1, 2], [3, 4, 5]]
    """
    spans: list[range] = []
    start, n = 0, len(tokens)
    while n - start > window:
        cut = _cut_point(tokens, word_ids, start, start + window)
        spans.append(range(start, cut))
        start = cut
    if start < n or not spans:
        spans.append(range(start, n))
    return spans


class TextEncoder:
    """Turns texts into :class:`EncodedText` with a fast tokenizer.

    ``max_length`` counts the special tokens, as the model sees it.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        if max_length < 8:
            raise ValueError("max_length must be at least 8")
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_length = max_length
        self.cls_id, self.sep_id = self._special_ids(tokenizer)
        self.pad_id = 0
        #: Id of the unknown token (``[UNK]``, ``<unk>``); ``None`` if the vocabulary has none.
        self.unk_id = self._unknown_id(tokenizer)

    @classmethod
    def from_file(cls, path: Path | str, max_length: int) -> TextEncoder:
        """Load ``tokenizer.json``."""
        return cls(Tokenizer.from_file(str(path)), max_length)

    @staticmethod
    def _special_ids(tokenizer: Tokenizer) -> tuple[int, int]:
        for cls_tok, sep_tok in _SPECIALS:
            cls_id, sep_id = tokenizer.token_to_id(cls_tok), tokenizer.token_to_id(sep_tok)
            if cls_id is not None and sep_id is not None:
                return cls_id, sep_id
        raise ValueError("tokenizer has neither [CLS]/[SEP] nor <s>/</s> tokens")

    @staticmethod
    def _unknown_id(tokenizer: Tokenizer) -> int | None:
        token = getattr(tokenizer.model, "unk_token", None)
        for candidate in (token, "[UNK]", "<unk>"):
            if isinstance(candidate, str) and tokenizer.token_to_id(candidate) is not None:
                return tokenizer.token_to_id(candidate)
        return None

    def encode(self, texts: Sequence[str]) -> list[EncodedText]:
        """Tokenize and window ``texts``; raises ``ValueError`` on an empty or blank text."""
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"text {i} is empty; drop or dead-letter empty texts first")
        normalized = [normalize_text(t) for t in texts]
        encodings = self._tokenizer.encode_batch(normalized, add_special_tokens=False)
        window = self.max_length - 2
        out: list[EncodedText] = []
        for enc in encodings:
            ids = enc.ids
            if len(ids) <= window:
                spans = [range(len(ids))]
            else:
                spans = split_windows(enc.tokens, enc.word_ids, window)
            chunks = tuple((self.cls_id, *ids[s.start : s.stop], self.sep_id) for s in spans)
            unknown = ids.count(self.unk_id) if self.unk_id is not None else 0
            out.append(EncodedText(chunks=chunks, n_tokens=len(ids), n_unknown=unknown))
        return out

    def encode_truncated(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """First window of each text (for training, where labels are per headline)."""
        normalized = [normalize_text(t) for t in texts]
        encodings = self._tokenizer.encode_batch(normalized, add_special_tokens=False)
        keep = self.max_length - 2
        return [(self.cls_id, *enc.ids[:keep], self.sep_id) for enc in encodings]


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad to the longest member: ``(input_ids, attention_mask, token_type_ids)``, int64.

    >>> ids, mask, types = pad_batch([[101, 7, 102], [101, 102]])
    >>> ids.tolist(), mask.tolist()
    ([[101, 7, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])
    """
    longest = max(len(s) for s in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask, np.zeros_like(ids)
