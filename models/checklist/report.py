"""Score the behavioural suite with a model directory and summarise it (no torch).

The headlines go through :class:`~models.scoring.Classifier`, the code path of
the stream scorer and ``finsentinel classify``, in the suite's file order and
fixed batches (int8 scores move slightly with batch composition). A row counts
as right for sentiment when the predicted label equals the analyst's; topic is
scored on the rows that carry a topic label.

>>> report = summarise(
...     [_row("a-01", "x", "negative", "Earnings", "plain")],
...     [("negative", "Markets")],
... )
>>> report["sentiment_accuracy"], report["topic_accuracy"], report["topic_n"]
(1.0, 0.0, 1)
>>> print(markdown_table(report).splitlines()[2])
| a | 1 | 1/1 (100%) | 0/1 |
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from models.checklist.suite import SPLITS, Headline, Suite, load_suite
from models.labels import SENTIMENT_LABELS
from models.providers import ProviderName
from models.scoring import Classifier

__all__ = ["card_entry", "evaluate_suite", "format_report", "markdown_table", "summarise"]

#: The target of issue 16 for the held-out third (sentiment accuracy).
TARGET_ACCURACY = 0.90


def _row(row_id: str, text: str, sentiment: str, topic: str | None, capability: str) -> Headline:
    """A headline for examples and tests (event type = the id's prefix)."""
    return Headline.model_validate(
        {
            "id": row_id,
            "text": text,
            "event_type": row_id.rsplit("-", 1)[0],
            "sentiment": sentiment,
            "topic": topic,
            "capability": capability,
        }
    )


def _group(
    rows: Sequence[Headline], predicted: Sequence[tuple[str, str]], key: Callable[[Headline], str]
) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "sentiment_right": 0, "topic_n": 0, "topic_right": 0}
    )
    for row, (sentiment, topic) in zip(rows, predicted, strict=True):
        g = groups[key(row)]
        g["n"] += 1
        g["sentiment_right"] += sentiment == row.sentiment
        if row.topic is not None:
            g["topic_n"] += 1
            g["topic_right"] += topic == row.topic
    for g in groups.values():
        g["sentiment_accuracy"] = g["sentiment_right"] / g["n"]
        g["topic_accuracy"] = g["topic_right"] / g["topic_n"] if g["topic_n"] else None
    return dict(groups)


def summarise(rows: Sequence[Headline], predicted: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Accuracy overall, per event type, per capability and per true sentiment.

    ``predicted`` holds one ``(sentiment, topic)`` per row. The report also
    lists every row the model got wrong on either head (``failures``).
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    overall = _group(rows, predicted, lambda _: "all")["all"]
    confusion: dict[str, dict[str, int]] = {
        t: dict.fromkeys(SENTIMENT_LABELS, 0) for t in SENTIMENT_LABELS
    }
    failures = []
    for row, (sentiment, topic) in zip(rows, predicted, strict=True):
        confusion[row.sentiment][sentiment] += 1
        topic_wrong = row.topic is not None and topic != row.topic
        if sentiment != row.sentiment or topic_wrong:
            failures.append(
                {
                    "id": row.id,
                    "text": row.text,
                    "capability": row.capability,
                    "sentiment": row.sentiment,
                    "predicted_sentiment": sentiment,
                    "topic": row.topic,
                    "predicted_topic": topic,
                }
            )
    return {
        "n": overall["n"],
        "sentiment_accuracy": overall["sentiment_accuracy"],
        "topic_n": overall["topic_n"],
        "topic_accuracy": overall["topic_accuracy"],
        "by_event_type": _group(rows, predicted, lambda r: r.event_type),
        "by_capability": _group(rows, predicted, lambda r: r.capability),
        "by_sentiment": _group(rows, predicted, lambda r: r.sentiment),
        "sentiment_confusion": confusion,
        "failures": failures,
    }


def evaluate_suite(
    model: Classifier | Path | str | None = None,
    *,
    split: Literal["train", "test", "all"] = "test",
    suite: Suite | None = None,
    provider: ProviderName = "cpu",
    variant: str | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Score one side of the suite's split with ``model`` (a directory, or a loaded classifier).

    ``None`` is the shipped ``models/default``. The report is JSON-able; see
    :func:`summarise` for its contents, plus the model and suite it came from.
    """
    suite = suite if suite is not None else load_suite()
    clf = (
        model
        if isinstance(model, Classifier)
        else Classifier.load(model, provider=provider, variant=variant)
    )
    rows = suite.select(split)
    predictions = clf.predict([row.text for row in rows], batch_size=batch_size)
    report = summarise(rows, [(p.sentiment, p.topic) for p in predictions])
    return {
        "model": str(clf.model_dir.path),
        "model_version": clf.card.version,
        "variant": clf.variant,
        "split": split,
        "suite": {
            "file": suite.path.name,
            "sha256": hashlib.sha256(suite.path.read_bytes()).hexdigest(),
            "rows": {s: len(suite.select(s)) for s in SPLITS},
            "event_types": len(suite.event_types),
        },
        "target_sentiment_accuracy": TARGET_ACCURACY,
        **report,
    }


def card_entry(report: dict[str, Any]) -> dict[str, Any]:
    """The compact form for a model card's ``metrics["checklist"]`` (no failure list).

    Per event type and capability: ``[n, sentiment accuracy, topic accuracy]``,
    accuracies rounded to 3 places (topic ``None`` where no row has a topic).
    """

    def compact(groups: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
        return {
            name: [
                g["n"],
                round(g["sentiment_accuracy"], 3),
                None if g["topic_accuracy"] is None else round(g["topic_accuracy"], 3),
            ]
            for name, g in groups.items()
        }

    return {
        "split": report["split"],
        "suite_sha256": report["suite"]["sha256"],
        "n": report["n"],
        "sentiment_accuracy": round(report["sentiment_accuracy"], 4),
        "topic_n": report["topic_n"],
        "topic_accuracy": None
        if report["topic_accuracy"] is None
        else round(report["topic_accuracy"], 4),
        "columns": ["n", "sentiment_accuracy", "topic_accuracy"],
        "by_event_type": compact(report["by_event_type"]),
        "by_capability": compact(report["by_capability"]),
    }


def _fraction(right: int, n: int) -> str:
    return f"{right}/{n}" if n else "–"


def markdown_table(report: dict[str, Any], *, by: str = "by_event_type") -> str:
    """A Markdown table of ``by`` (``by_event_type``/``by_capability``/``by_sentiment``)."""
    lines = [
        "| group | rows | sentiment right | topic right |",
        "|---|---|---|---|",
    ]
    groups: dict[str, dict[str, Any]] = report[by]
    for name in sorted(groups, key=lambda k: (groups[k]["sentiment_accuracy"], k)):
        g = groups[name]
        lines.append(
            f"| {name} | {g['n']} | {g['sentiment_right']}/{g['n']} "
            f"({g['sentiment_accuracy']:.0%}) | {_fraction(g['topic_right'], g['topic_n'])} |"
        )
    return "\n".join(lines)


def _lines(title: str, groups: dict[str, dict[str, Any]]) -> Iterable[str]:
    yield f"{title:<26} {'n':>4} {'sentiment':>10} {'topic':>10}"
    for name in sorted(groups, key=lambda k: (groups[k]["sentiment_accuracy"], k)):
        g = groups[name]
        topic = "" if g["topic_accuracy"] is None else f"{g['topic_accuracy']:.3f}"
        yield f"{name:<26} {g['n']:>4} {g['sentiment_accuracy']:>10.3f} {topic:>10}"
    yield ""


def format_report(report: dict[str, Any], *, failures: bool = False) -> str:
    """Plain-text tables of a report (worst groups first), for the terminal."""
    topic = report["topic_accuracy"]
    head = [
        f"model {report['model_version']} ({report['variant']}), split {report['split']}: "
        f"{report['n']} headlines",
        f"sentiment accuracy {report['sentiment_accuracy']:.3f} "
        f"(target {report['target_sentiment_accuracy']:.2f}); topic accuracy "
        + ("–" if topic is None else f"{topic:.3f}")
        + f" on {report['topic_n']} rows with a topic",
        "",
    ]
    body = [
        *_lines("event type", report["by_event_type"]),
        *_lines("capability", report["by_capability"]),
        *_lines("true sentiment", report["by_sentiment"]),
    ]
    if failures:
        body.append("wrong (expected -> predicted):")
        body.extend(
            f"  {f['id']}: {f['sentiment']} -> {f['predicted_sentiment']}; "
            f"{f['topic']} -> {f['predicted_topic']}: {f['text']}"
            for f in report["failures"]
        )
    return "\n".join(head + body)
