"""The rules file: which series to watch, how to decide, where to notify.

Validated at start-up with pydantic; errors name the file, the line and the
field (see :func:`load_rules`). Durations accept ``90s``, ``5m``, ``2h``.

>>> rules = parse_rules('''
... rules:
...   - name: neg-topic
...     series: {kind: topic}
...     window: 5m
... ''')
>>> r = rules.rules[0]
>>> r.window_s, r.detectors, r.series.values, r.hold_s
(300, ['count', 'share'], ['*'], 120)
>>> parse_rules("rules: [{name: x, series: {kind: sector}}]")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
alerts.exceptions.RulesError: <rules>: line 1: rules.0.series.kind: Input should be 'all', ...
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.durations import parse_duration_s
from alerts.exceptions import RulesError

__all__ = [
    "AlertmanagerChannel",
    "ChannelConfig",
    "EmailChannel",
    "Rule",
    "RulesFile",
    "SeriesSelector",
    "SlackChannel",
    "WebhookChannel",
    "load_rules",
    "parse_rules",
]

Seconds = Annotated[int, BeforeValidator(parse_duration_s), Field(ge=0)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
Label = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeriesSelector(_Strict):
    """Which series a rule watches: a kind and values (glob patterns, ``*`` = all)."""

    kind: Literal["all", "topic", "ticker", "source"]
    values: list[str] = ["*"]

    def matches(self, kind: str, value: str) -> bool:
        """Whether the series ``(kind, value)`` is selected."""
        return kind == self.kind and any(fnmatch.fnmatchcase(value, v) for v in self.values)


class Rule(_Strict):
    """One alert rule; see ``alerts/README.md`` for every field."""

    name: Name
    description: str = ""
    series: SeriesSelector
    detectors: Annotated[
        list[Literal["surge", "robust", "count", "share", "cusum"]], Field(min_length=1)
    ] = [
        "count",
        "share",
    ]
    #: ``all``: every available detector must exceed the threshold; ``any``: one suffices.
    combine: Literal["all", "any"] = "all"
    window_s: Seconds = Field(default=300, alias="window")
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    #: A tail probability at or under this scores 1.0 (score = log10 p / log10 full_at_p).
    full_at_p: Annotated[float, Field(gt=0, lt=1)] = 1e-8
    min_volume: Annotated[int, Field(ge=1)] = 8
    min_negative: Annotated[int, Field(ge=0)] = 5
    min_history_s: Seconds = Field(default=1800, alias="min_history")
    baseline_half_life_s: Seconds = Field(default=3600, alias="baseline_half_life")
    #: surge: memory of the hour-of-day / weekday profile (per slot).
    season_half_life_s: Seconds = Field(default=14 * 86_400, alias="season_half_life")
    #: surge: memory of the slow reference level the level-shift scales (3 h, 12 h) test
    #: against; a shift lasting longer than this becomes the new normal.
    shift_baseline_half_life_s: Seconds = Field(
        default=3 * 86_400, alias="shift_baseline_half_life"
    )
    #: surge: memory of the over-dispersion estimate.
    dispersion_half_life_s: Seconds = Field(default=3 * 86_400, alias="dispersion_half_life")
    #: surge/robust: memory of the recent peak surprise (onset scoring: a burst scores once).
    onset_half_life_s: Seconds = Field(default=3600, alias="onset_half_life")
    #: surge/robust: memory of how often the series was surprising (likelihood normalisation).
    likelihood_half_life_s: Seconds = Field(default=7 * 86_400, alias="likelihood_half_life")
    cusum_drift: Annotated[float, Field(ge=0)] = 0.5
    cusum_threshold: Annotated[float, Field(gt=0)] = 8.0
    severity: Literal["info", "warning", "critical"] = "warning"
    hold_s: Seconds = Field(default=120, alias="hold")
    clear_s: Seconds = Field(default=600, alias="clear")
    cooldown_s: Seconds = Field(default=1800, alias="cooldown")
    #: While firing, send an "updated" event at most this often (and only on growth).
    update_interval_s: Seconds = Field(default=900, alias="update_interval")
    #: Label whose value groups notifications (e.g. ``sector``); None = one per alert.
    group_by: Label | None = None
    labels: dict[Label, str] = {}
    #: Channel names (globs); default every channel.
    channels: list[str] = ["*"]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def key(self, kind: str, value: str) -> str:
        """The stable alert key of this rule on one series."""
        return f"{self.name}:{kind}:{value}"


class _Channel(_Strict):
    name: Name
    #: Most notifications per minute; more wait in the channel's queue.
    rate_limit_per_minute: Annotated[int, Field(ge=1)] = 30
    #: Notifications older than this are dropped (and counted) instead of sent late.
    max_age_s: Seconds = Field(default=86_400, alias="max_age")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class WebhookChannel(_Channel):
    """Generic JSON webhook signed with HMAC-SHA256 (``X-FinSentinel-Signature``)."""

    type: Literal["webhook"]
    url: str | None = None
    url_env: EnvName | None = None
    secret_env: EnvName | None = None


class SlackChannel(_Channel):
    """Slack incoming webhook (blocks); the URL is a secret, so it comes from ``url_env``."""

    type: Literal["slack"]
    url_env: EnvName


class EmailChannel(_Channel):
    """E-mail over SMTP; STARTTLS when ``starttls``; password from ``password_env``."""

    type: Literal["email"]
    smtp_host: str
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    username: str | None = None
    password_env: EnvName | None = None
    from_addr: str
    to_addrs: Annotated[list[str], Field(min_length=1)]
    timeout_s: Annotated[float, Field(gt=0)] = 10.0


class AlertmanagerChannel(_Channel):
    """Prometheus Alertmanager v2 API (``POST /api/v2/alerts``)."""

    type: Literal["alertmanager"]
    url: str
    generator_url: str | None = None


ChannelConfig = Annotated[
    WebhookChannel | SlackChannel | EmailChannel | AlertmanagerChannel,
    Field(discriminator="type"),
]


class RulesFile(_Strict):
    """The whole file: rules, channels and labels for series (e.g. sectors of tickers)."""

    version: Literal[1] = 1
    rules: Annotated[list[Rule], Field(min_length=1)]
    channels: list[ChannelConfig] = []
    #: Extra labels per ticker (``{JPM: {sector: banks}}``), used by ``group_by``.
    ticker_labels: dict[str, dict[Label, str]] = {}
    #: Extra labels per topic.
    topic_labels: dict[str, dict[Label, str]] = {}

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(dup)}")
        return rules

    @model_validator(mode="after")
    def _check_channels(self) -> RulesFile:
        names = [c.name for c in self.channels]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"channel names must be unique; repeated: {', '.join(dup)}")
        for rule in self.rules:
            for pattern in rule.channels:
                if self.channels and not fnmatch.filter(names, pattern):
                    raise ValueError(
                        f"rule {rule.name!r} routes to channel {pattern!r}, which matches no "
                        f"channel (have: {', '.join(names)})"
                    )
        return self

    def labels_of(self, kind: str, value: str) -> dict[str, str]:
        """Configured labels of a series."""
        table = {"ticker": self.ticker_labels, "topic": self.topic_labels}.get(kind, {})
        return dict(table.get(value, {}))

    def channels_for(self, rule: Rule) -> list[str]:
        """Names of the channels ``rule`` notifies."""
        names = [c.name for c in self.channels]
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in rule.channels)]


def load_rules(path: Path) -> RulesFile:
    """Read and validate a rules file; :class:`RulesError` says file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc.strerror}") from exc
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str = "<rules>") -> RulesFile:
    """Validate rules from YAML text (see :func:`load_rules`)."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{source}: expected a mapping with a 'rules' list at the top")
    try:
        return RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesError(_explain(exc, root, source)) from exc


def _explain(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    lines = []
    for err in exc.errors()[:5]:
        loc = [p for p in err["loc"] if not _is_union_tag(p)]
        line = _line_of(root, loc)
        where = ".".join(str(p) for p in loc) or "<top>"
        prefix = f"{source}: line {line}: " if line else f"{source}: "
        lines.append(f"{prefix}{where}: {err['msg']}")
    more = exc.error_count() - len(lines)
    return "\n".join(lines) + (f"\n(+{more} more)" if more > 0 else "")


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in {"webhook", "slack", "email", "alertmanager"}


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node on the path ``loc``."""
    found = node
    for part in loc:
        nxt = None
        if isinstance(found, yaml.MappingNode):
            nxt = next((v for k, v in found.value if k.value == str(part)), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int):
            nxt = found.value[part] if part < len(found.value) else None
        if nxt is None:
            break
        found = nxt
    return found.start_mark.line + 1 if found is not None else None
