"""Command line: ``finsentinel alert`` runs the service; ``finsentinel alerts ...`` manages it.

``register(app)`` adds the commands to the root Typer app (``finsentinel/cli.py``).
Bad input prints one clear line and exits 2; heavy imports stay inside commands.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from stream.runtime import EmbeddedBrokerOpt, load_settings

__all__ = ["register"]

alerts_app = typer.Typer(
    help="Inspect alerts, manage silences, test channels, detect offline.", no_args_is_help=True
)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="Alert database (default: FINSENTINEL_ALERTS_DB_PATH)")
]
RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules file (default: FINSENTINEL_ALERTS_RULES_PATH or shipped)"),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings(**overrides: Any) -> Any:
    from alerts.settings import AlertSettings
    from stream.contracts.errors import ConfigError

    try:
        return load_settings(AlertSettings, **overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc


def _store(db: Path | None) -> Any:
    from alerts.db import Database
    from alerts.exceptions import StoreError
    from alerts.store import AlertStore

    path = db or _settings().db_path
    if str(path) != ":memory:" and not Path(path).exists():
        raise _fail(f"no alert database at {path} (has the service run? use --db)")
    try:
        return AlertStore(Database(path))
    except StoreError as exc:
        raise _fail(str(exc)) from exc


def _rules(path: Path | None) -> Any:
    from alerts.exceptions import RulesError
    from alerts.rules import load_rules

    try:
        return load_rules(path or _settings().rules_path)
    except RulesError as exc:
        raise _fail(str(exc)) from exc


def alert(
    rules: RulesOption = None,
    db: DbOption = None,
    metrics_port: Annotated[int | None, typer.Option(help="0 = any free port")] = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Back-fill or archive replay: event time alone moves the watermark, lateness "
            "is the longest window, windows flush when the input goes quiet "
            "(FINSENTINEL_ALERTS_HISTORY; docs/history.md).",
        ),
    ] = False,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning",
            help="With a fresh --db, read the scored topic from its start instead of the "
            "consumer group's committed offsets (FINSENTINEL_ALERTS_FROM_BEGINNING).",
        ),
    ] = False,
    embedded_broker: EmbeddedBrokerOpt = False,
) -> None:
    """Run the alerting service until SIGTERM/Ctrl+C (then finish, checkpoint, exit 0).

    Needs KAFKA_BOOTSTRAP_SERVERS unless --embedded-broker is given.
    """
    from alerts.__main__ import serve

    settings = _settings(
        rules_path=rules,
        db_path=db,
        metrics_port=metrics_port,
        history=history or None,
        from_beginning=from_beginning or None,
    )
    _rules(settings.rules_path)  # a bad rules file is one line and exit 2, before Kafka
    # The root app configured logging.
    raise typer.Exit(serve(settings, configure_logs=False, allow_embedded=embedded_broker))


@alerts_app.command("list")
def list_alerts(
    state: Annotated[str | None, typer.Option(help="firing, updated or resolved")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    db: DbOption = None,
) -> None:
    """The most recent alerts, newest first."""
    from rich.console import Console
    from rich.table import Table

    if state not in (None, "firing", "updated", "resolved"):
        raise _fail(f"--state must be firing, updated or resolved, not {state!r}")
    table = Table("id", "state", "severity", "key", "score", "started", "summary")
    for s in _store(db).list(state=state, limit=limit):
        a = s.alert
        table.add_row(
            str(s.id),
            a.state + (" (silenced)" if s.silenced else ""),
            a.severity,
            a.key,
            f"{a.score:.2f}",
            f"{a.started_at:%Y-%m-%d %H:%M}",
            a.summary,
        )
    Console().print(table)


@alerts_app.command()
def show(
    alert_id: Annotated[int, typer.Argument(help="Alert id from `alerts list`")],
    db: DbOption = None,
) -> None:
    """One alert with its evidence headlines and history."""
    store = _store(db)
    stored = store.get(alert_id)
    if stored is None:
        raise _fail(f"no alert with id {alert_id}", code=1)
    a = stored.alert
    typer.echo(f"{a.key}  [{a.state}] {a.severity}  score {a.score:.2f}")
    typer.echo(a.summary)
    typer.echo(
        f"observed {a.observed:g} vs baseline {a.baseline:g} in "
        f"{a.window_start:%H:%M}-{a.window_end:%H:%M} UTC; started {a.started_at:%c}"
    )
    for e in a.evidence:
        typer.echo(f"  - {e.title} [{e.source}, {e.confidence:.0%}] {e.url or ''}")
    for h in store.history(alert_id):
        typer.echo(f"  {h.updated_at:%Y-%m-%d %H:%M} {h.state}")


@alerts_app.command()
def silence(
    key: Annotated[str, typer.Argument(help="Alert key or glob, e.g. 'negative-spike-ticker:*'")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d")],
    reason: Annotated[str, typer.Option(help="Why (shown to colleagues)")],
    db: DbOption = None,
) -> None:
    """Mute notifications for matching alerts until the silence expires."""
    from alerts.durations import format_duration_s, parse_duration_s

    try:
        seconds = parse_duration_s(duration)
    except ValueError as exc:
        raise _fail(f"--for: {exc}") from exc
    if seconds <= 0:
        raise _fail("--for must be positive")
    now = time.time()
    path = db or _settings().db_path
    from alerts.db import Database
    from alerts.store import AlertStore

    sid = AlertStore(Database(path)).add_silence(
        key, until_s=now + seconds, reason=reason, now_s=now
    )
    until = datetime.fromtimestamp(now + seconds, tz=UTC)
    typer.echo(f"silence {sid}: {key} for {format_duration_s(seconds)} (until {until:%c} UTC)")


@alerts_app.command()
def unsilence(
    key_or_id: Annotated[str, typer.Argument(help="Silence id or the exact key/glob")],
    db: DbOption = None,
) -> None:
    """Remove a silence."""
    removed = _store(db).remove_silence(key_or_id)
    if not removed:
        raise _fail(f"no silence matches {key_or_id!r}", code=1)
    typer.echo(f"removed {removed} silence(s)")


@alerts_app.command()
def silences(db: DbOption = None) -> None:
    """Silences in force now."""
    for s in _store(db).silences(now_s=time.time()):
        until = datetime.fromtimestamp(s.until_s, tz=UTC)
        typer.echo(f"{s.id}\t{s.pattern}\tuntil {until:%Y-%m-%d %H:%M} UTC\t{s.reason}")


@alerts_app.command("check-rules")
def check_rules(path: Annotated[Path | None, typer.Argument(help="Rules file")] = None) -> None:
    """Validate a rules file (exit 2 with file, line and field on error)."""
    rules = _rules(path)
    typer.echo(f"ok: {len(rules.rules)} rules, {len(rules.channels)} channels")


@alerts_app.command("test-notify")
def test_notify(
    channel: Annotated[str, typer.Argument(help="Channel name from the rules file")],
    rules: RulesOption = None,
) -> None:
    """Send a test alert to one channel now; exit 1 if it fails.

    The alert is marked as a test everywhere: "[TEST]" title, label test="true",
    and for Alertmanager an endsAt 5 minutes later, so it disappears by itself.
    """
    from alerts.exceptions import ChannelConfigError, NotifyError
    from alerts.notify import Notification, build_notifier
    from alerts.notify.probe import probe_alert

    cfg = {c.name: c for c in _rules(rules).channels}
    if channel not in cfg:
        raise _fail(f"no channel {channel!r} (have: {', '.join(cfg) or 'none'})")
    try:
        notifier = build_notifier(cfg[channel], clock=time.time)
    except ChannelConfigError as exc:
        raise _fail(str(exc)) from exc
    try:
        now = time.time()
        notifier.send(Notification((probe_alert(now),), created_s=now))
    except NotifyError as exc:
        raise _fail(f"delivery failed: {exc}", code=1) from exc
    finally:
        notifier.close()
    typer.echo(f"sent a test alert (marked test) to {channel} ({notifier.channel_type})")


@alerts_app.command()
def detect(
    input: Annotated[Path, typer.Option("--input", help="CSV with a time and a count column")],
    time_column: Annotated[str, typer.Option("--time-column")],
    value_column: Annotated[str, typer.Option("--value-column", help="Negative documents")],
    output: Annotated[Path, typer.Option("--output", help="Scored CSV to write")],
    total_column: Annotated[
        str | None, typer.Option("--total-column", help="All documents (enables the share test)")
    ] = None,
    rule_name: Annotated[str | None, typer.Option("--rule", help="Rule to apply")] = None,
    bucket: Annotated[
        str | None, typer.Option(help="Bucket length, e.g. 1m (default: inferred)")
    ] = None,
    rules: RulesOption = None,
) -> None:
    """Score a historical count series causally with the live detectors."""
    from alerts.backtest.offline import detect_csv
    from alerts.durations import parse_duration_s
    from alerts.exceptions import InputError

    rule_set = _rules(rules)
    by_name = {r.name: r for r in rule_set.rules}
    if rule_name is not None and rule_name not in by_name:
        raise _fail(f"no rule {rule_name!r} (have: {', '.join(by_name)})")
    rule = by_name[rule_name] if rule_name else rule_set.rules[0]
    if not input.exists():
        raise _fail(f"--input {input} does not exist")
    try:
        bucket_s = parse_duration_s(bucket) if bucket else None
        summary = detect_csv(
            input,
            output,
            time_column=time_column,
            value_column=value_column,
            total_column=total_column,
            rule=rule,
            bucket_s=bucket_s,
        )
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"{summary.buckets} buckets, {summary.alerts} alerts, "
        f"{summary.firing_buckets} buckets firing -> {output}"
    )


def register(app: typer.Typer) -> None:
    """Add ``alert`` and the ``alerts`` sub-commands to the root app."""
    app.command("alert")(alert)
    app.add_typer(alerts_app, name="alerts")
