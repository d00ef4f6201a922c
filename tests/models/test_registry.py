"""The model registry on real (tiny) model directories: register, promote, roll back."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from models.exceptions import ModelDirError, RegistryError
from models.modeldir import load_model_dir, write_card
from models.registry import ACTIVE_FILE, PROMOTIONS_FILE, ModelRegistry, card_sha256


def _version(tiny_model_dir: Path, root: Path, version: str) -> Path:
    """A copy of the tiny model with another version in its card."""
    out = root / version
    shutil.copytree(tiny_model_dir, out)
    card = load_model_dir(out).card.model_copy(update={"version": version})
    write_card(out, card)
    return out


def _report(model: Path, *, promotable: bool = True) -> dict[str, Any]:
    card = load_model_dir(model).card
    return {
        "new": {"name": card.name, "version": card.version, "card_sha256": card_sha256(model)},
        "promotable": promotable,
        "reasons": [] if promotable else ["sentiment: frozen-validation macro-F1 falls by 0.2"],
    }


@pytest.fixture
def versions(tiny_model_dir: Path, tmp_path: Path) -> dict[str, Path]:
    return {v: _version(tiny_model_dir, tmp_path / "builds", v) for v in ("1.0", "1.1", "1.2")}


def test_register_copies_and_verifies_and_never_replaces(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    entry = reg.register(versions["1.0"])
    assert entry.name == "finsentinel-tiny-1.0"
    assert entry.path == tmp_path / "reg" / "versions" / entry.name
    assert card_sha256(entry.path) == card_sha256(versions["1.0"])
    load_model_dir(entry.path, verify_hashes=True)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register(versions["1.0"])
    assert [e.name for e in reg.entries()] == [entry.name]
    assert reg.active() is None


def test_a_tampered_model_is_refused_and_leaves_nothing(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    bad = versions["1.1"]
    data = bytearray((bad / "tokenizer.json").read_bytes())
    data[-2] = ord(" ") if data[-2] != ord(" ") else ord("\t")
    (bad / "tokenizer.json").write_bytes(bytes(data))
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(ModelDirError, match="sha256"):
        reg.register(bad)
    assert reg.entries() == []
    assert not (tmp_path / "reg").exists() or not any((tmp_path / "reg" / "versions").iterdir())


def test_promotion_needs_a_passing_report_for_this_exact_build(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    first, second = reg.register(versions["1.0"]), reg.register(versions["1.1"])
    reg.promote(first.name, report=None, force_reason="first model of this registry")
    with pytest.raises(RegistryError, match="needs a comparison report"):
        reg.promote(second.name, report=None)
    with pytest.raises(RegistryError, match="failed the promotion gate: sentiment"):
        reg.promote(second.name, report=_report(versions["1.1"], promotable=False))
    with pytest.raises(RegistryError, match="not this build"):
        reg.promote(second.name, report=_report(versions["1.2"]))
    with pytest.raises(RegistryError, match="needs a reason"):
        reg.promote(second.name, report=None, force_reason="  ")
    assert reg.active_name() == first.name
    assert len(reg.history()) == 1

    record = reg.promote(second.name, report=_report(versions["1.1"]))
    assert (record.from_version, record.to_version, record.forced) == (
        first.name,
        second.name,
        False,
    )
    assert reg.active_name() == second.name
    lines = (tmp_path / "reg" / PROMOTIONS_FILE).read_text().splitlines()
    logged = json.loads(lines[-1])
    assert logged["report"]["promotable"] is True and logged["to"] == second.name
    assert logged["at"]
    with pytest.raises(RegistryError, match="already the active"):
        reg.promote(second.name, report=_report(versions["1.1"]))


def test_the_pointer_moves_whole_or_not_at_all(
    versions: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    first, second = reg.register(versions["1.0"]), reg.register(versions["1.1"])
    reg.promote(first.name, report=None, force_reason="first")
    before_log = (tmp_path / "reg" / PROMOTIONS_FILE).read_bytes()
    stamp = os.stat(tmp_path / "reg" / ACTIVE_FILE).st_ino

    def no_rename(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("stream.files.os.replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        reg.promote(second.name, report=_report(versions["1.1"]))
    monkeypatch.undo()
    assert (tmp_path / "reg" / ACTIVE_FILE).read_text() == first.name + "\n"
    assert (tmp_path / "reg" / PROMOTIONS_FILE).read_bytes() == before_log
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == [
        ".lock", ACTIVE_FILE, PROMOTIONS_FILE, "versions",
    ]  # fmt: skip

    reg.promote(second.name, report=_report(versions["1.1"]))
    # A new file moved over the old one: readers see one name or the other, never a mix.
    assert os.stat(tmp_path / "reg" / ACTIVE_FILE).st_ino != stamp
    assert reg.active_name() == second.name


def test_rollback_walks_back_the_promotions(versions: dict[str, Path], tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    a, b, c = (reg.register(versions[v]) for v in ("1.0", "1.1", "1.2"))
    reg.promote(a.name, report=None, force_reason="first")
    reg.promote(b.name, report=_report(versions["1.1"]))
    reg.promote(c.name, report=None, force_reason="hotfix for a bad tokenizer")
    assert reg.rollback(reason="c misreads tickers").to_version == b.name
    assert reg.active_name() == b.name
    assert reg.rollback().to_version == a.name
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback()
    actions = [(p.action, p.to_version) for p in reg.history()]
    assert actions == [
        ("promote", a.name), ("promote", b.name), ("promote", c.name),
        ("rollback", b.name), ("rollback", a.name),
    ]  # fmt: skip
    assert [e.name for e in reg.entries() if e.active] == [a.name]
