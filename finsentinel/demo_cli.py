"""``finsentinel demo`` and ``finsentinel broker``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


CorpusOpt = Annotated[
    Path | None,
    typer.Option(
        "--corpus",
        help="Folder of JSONL/CSV/RSS files to replay (default: the bundled corpus).",
        exists=True,
        file_okay=False,
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="Model directory (default: the shipped models/default).",
        exists=True,
        file_okay=False,
    ),
]


def demo(
    corpus: CorpusOpt = None,
    model: ModelOpt = None,
    metrics_host: Annotated[str, typer.Option(help="Address /metrics binds to.")] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option(help="Port of /metrics and /healthz (0: any free).")
    ] = 9100,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Keep services and /metrics up until Ctrl+C.")
    ] = False,
    timeout_s: Annotated[
        float, typer.Option(help="Fail if the corpus is not through by then.")
    ] = 300.0,
) -> None:
    """Run the whole pipeline on the embedded broker over a bundled corpus, then summarise."""
    from rich.console import Console

    from finsentinel.demo import DemoError, DemoOptions, run_demo
    from finsentinel.demo_corpus import DEMO_DATA_DIR
    from stream.contracts.errors import FinSentinelError
    from stream.kafka import KafkaSettings
    from stream.runtime import StopFlag

    options = DemoOptions(
        corpus_dir=corpus or DEMO_DATA_DIR,
        model_dir=model,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        keep_running=keep_running,
        timeout_s=timeout_s,
    )
    console = Console()
    stop = StopFlag().install()
    try:
        summary = run_demo(options, kafka=KafkaSettings(), console=console, until=stop)
    except DemoError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        raise typer.Exit(1) from exc
    except FinSentinelError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if summary.scored == 0:
        console.print("[red]nothing was scored[/]")
        raise typer.Exit(1)


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free).")] = 9092,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-compatible broker (memory only) until Ctrl+C."""
    from rich.console import Console

    from stream.broker import EmbeddedBroker
    from stream.runtime import StopFlag

    stop = StopFlag().install()
    with EmbeddedBroker(host=host, port=port) as embedded:
        Console().print(
            f"embedded broker on {embedded.bootstrap_servers} (memory only); "
            f"export KAFKA_BOOTSTRAP_SERVERS={embedded.bootstrap_servers}"
        )
        while not stop.wait(1.0):
            if not embedded.running:
                raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``broker`` to the root app."""
    app.command("demo")(demo)
    app.command("broker")(broker)
