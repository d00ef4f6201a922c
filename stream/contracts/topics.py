"""Kafka topic names, defined once."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

__all__ = ["TOPIC_PREFIX_ENV", "TopicNames"]

#: The environment variable every service reads its topic prefix from.
TOPIC_PREFIX_ENV = "FINSENTINEL_TOPIC_PREFIX"


class TopicNames(BaseModel):
    """The topics of a deployment, all under one prefix.

    >>> TopicNames().scored
    'finsentinel.scored'
    >>> TopicNames.with_prefix("test1").raw
    ('test1.raw.news', 'test1.raw.comments')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw_news: str = "finsentinel.raw.news"
    raw_comments: str = "finsentinel.raw.comments"
    scored: str = "finsentinel.scored"
    alerts: str = "finsentinel.alerts"
    deadletter: str = "finsentinel.deadletter"
    #: :class:`~stream.contracts.schemas.StoryBreadth` updates from the crawlers.
    breadth: str = "finsentinel.breadth"
    #: :class:`~stream.contracts.schemas.FeedbackRecord` corrections by analysts, keyed by doc id.
    feedback: str = "finsentinel.feedback"
    #: A candidate model's output while it runs in shadow (``FINSENTINEL_SCORER_SHADOW_MODEL_DIR``).
    scored_shadow: str = "finsentinel.scored.shadow"

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        """All names under ``prefix`` (tests give each test its own prefix)."""
        return cls(
            raw_news=f"{prefix}.raw.news",
            raw_comments=f"{prefix}.raw.comments",
            scored=f"{prefix}.scored",
            alerts=f"{prefix}.alerts",
            deadletter=f"{prefix}.deadletter",
            breadth=f"{prefix}.breadth",
            feedback=f"{prefix}.feedback",
            scored_shadow=f"{prefix}.scored.shadow",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TopicNames:
        """Names under ``FINSENTINEL_TOPIC_PREFIX`` when it is set, else the defaults.

        >>> TopicNames.from_env({"FINSENTINEL_TOPIC_PREFIX": "staging"}).alerts
        'staging.alerts'
        """
        prefix = (os.environ if environ is None else environ).get(TOPIC_PREFIX_ENV, "").strip()
        return cls.with_prefix(prefix) if prefix else cls()

    @property
    def raw(self) -> tuple[str, str]:
        """The raw topics a scorer consumes."""
        return (self.raw_news, self.raw_comments)

    def raw_for(self, kind: str) -> str:
        """The raw topic for a document kind (``news`` or ``comment``)."""
        return self.raw_news if kind == "news" else self.raw_comments

    @property
    def all(self) -> tuple[str, ...]:
        """Every topic, for creating them at start-up."""
        return (
            self.raw_news,
            self.raw_comments,
            self.scored,
            self.alerts,
            self.deadletter,
            self.breadth,
            self.feedback,
            self.scored_shadow,
        )
