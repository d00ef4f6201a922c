"""Can the model read this text? Language detection and the too-little-text check.

The shipped model was trained on English financial text: on a German headline
or a row of rocket emoji it still outputs a sentiment, usually ``neutral``,
which would silently dilute every aggregate. :func:`check_text` says why a
text is not for the model:

* ``no_text``: no content word once cashtags, links, mentions, emoji, numbers
  and a few English function words are set aside, or fewer than
  :data:`MIN_CONTENT_WORDS` next to emoji, which then carry the meaning the model
  cannot see ("🚀🚀 $GME to the moon" has one: ``moon``; "Downgrades 11/25: $AEO
  $COLM ..." has one too and no emoji: the model reads it);
* ``language``: the detector (py3langid, its model ships in the wheel: no
  network) names a language outside ``languages`` with a normalised probability
  of at least :data:`MIN_PROBABILITY`. Short English headlines often get a
  low-confidence wrong guess (``ca`` 0.22 for "Acme beats estimates", Nigerian
  Pidgin 0.70 for a fund's dividend tweet), so below the bar the text counts as
  readable and the language as undetermined; at 0.8 no English text of the demo
  corpus or of 3,000 labelled English finance tweets was flagged, while clear
  German, French, Dutch and Finnish headlines were.

Scripts without spaces between words (Chinese, Japanese, Thai) count one
content word per two characters.

>>> check_text("Deutsche Bank übertrifft die Erwartungen und hebt die Prognose an")
TextCheck(language='de', unsupported_reason='language')
>>> check_text("🚀🚀 $GME to the moon")
TextCheck(language=None, unsupported_reason='no_text')
>>> check_text("Apple shares fall after weak iPhone sales in China")
TextCheck(language='en', unsupported_reason=None)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

__all__ = [
    "MIN_CONTENT_WORDS",
    "MIN_PROBABILITY",
    "MODEL_LANGUAGES",
    "TextCheck",
    "check_text",
    "load_detector",
]

#: Languages the shipped model reads (its training data is English).
MODEL_LANGUAGES = ("en",)
#: Least normalised probability for a non-model language to make a text unsupported.
MIN_PROBABILITY = 0.8
#: Fewest content words a text with emoji needs to be read (one without needs one).
MIN_CONTENT_WORDS = 2
#: Characters of a document the detector reads (the title and the body's start).
DETECT_CHARS = 1_000

_NOISE = re.compile(r"https?://\S+|www\.\S+|[$@#]\w+")
_WORD = re.compile(r"[^\W\d_]{2,}")
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "the",
        "this",
        "that",
        "to",
        "was",
        "we",
        "with",
        "you",
        "my",
        "our",
        "up",
    ]
)
_EMOJI = re.compile(r"[\u2600-\u27bf\U0001f000-\U0001faff]")
_lock = threading.Lock()


@dataclass(frozen=True)
class TextCheck:
    """What :func:`check_text` found: the language (if sure) and why not readable."""

    language: str | None
    unsupported_reason: Literal["language", "no_text"] | None


def load_detector() -> None:
    """Load the detector's model now (a few seconds, once per process)."""
    _identifier()


@cache
def _identifier() -> Any:
    """The py3langid identifier, loaded once (its model is in the wheel)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def content_words(text: str) -> int:
    """Words of two letters or more that carry meaning, outside cashtags and links.

    >>> content_words("🚀🚀 $GME to the moon"), content_words("Gold steady")
    (1, 2)
    >>> content_words("SASA聚酯选用英威达PTA技术")
    6
    """
    text = _NOISE.sub(" ", text)
    unspaced = len(_UNSPACED.findall(text))
    words = _WORD.findall(_UNSPACED.sub(" ", text))
    return sum(1 for w in words if w.lower() not in _FUNCTION_WORDS) + unspaced // 2


def check_text(text: str, *, languages: Collection[str] = MODEL_LANGUAGES) -> TextCheck:
    """Whether a model trained on ``languages`` can read ``text`` (see the module doc)."""
    words = content_words(text)
    if words == 0 or (words < MIN_CONTENT_WORDS and _EMOJI.search(text)):
        return TextCheck(None, "no_text")
    with _lock:  # one identifier, shared by the scorer's threads
        label, probability = _identifier().classify(_NOISE.sub(" ", text[:DETECT_CHARS]))
    if probability < MIN_PROBABILITY:
        return TextCheck(None, None)
    return TextCheck(str(label), None if label in languages else "language")
