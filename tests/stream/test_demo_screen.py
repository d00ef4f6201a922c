"""What the demo's screen says: the alerts it raised (not "0 alerts firing" while CRBK fires),
and with ``--keep-running`` the ALERT block and the summary before Ctrl+C, not after."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
from rich.console import Console

from finsentinel.demo import DemoOptions, DemoSummary, run_demo
from models.modeldir import DEFAULT_MODEL_DIR
from stream.runtime import StopFlag

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_MODEL_DIR / "model_card.json").exists(),
        reason="the shipped model models/default is missing (make model builds it)",
    ),
]


def test_keep_running_demo_shows_its_alerts_before_ctrl_c() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=160, force_terminal=False, color_system=None)
    until = StopFlag()
    result: list[DemoSummary] = []
    errors: list[BaseException] = []

    def demo() -> None:
        try:
            result.append(
                run_demo(
                    DemoOptions(metrics_port=0, keep_running=True), console=console, until=until
                )
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=demo, name="demo", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 600
        while "press Ctrl+C to stop" not in screen.getvalue():
            assert thread.is_alive(), (errors, screen.getvalue()[-3000:])
            assert time.monotonic() < deadline, screen.getvalue()[-3000:]
            time.sleep(0.2)
        shown = screen.getvalue()  # the services are still running: Ctrl+C not pressed yet
    finally:
        until.set()
        thread.join(timeout=120)
    assert not errors, errors
    assert "FinSentinel demo" in shown  # the summary table
    fired = [a for a in result[0].firing]
    assert fired and shown.count("ALERT [") == len(fired)
    assert "CRBK" in shown
    counts = [int(n) for n in re.findall(r"aggregated \((\d+) alerts raised\)", shown)]
    assert counts and counts[-1] == len(fired), shown[-3000:]
    assert "alerts firing)" not in shown
