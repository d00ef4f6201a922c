"""What ``pip install .`` puts in the images, checked without Docker.

The Dockerfiles copy an allow-listed build context (``Dockerfile.*.dockerignore``)
and install the project non-editable, so only files that setuptools packages
reach the image. This builds the same wheel from the same files and checks that
every data file the packages carry (templates, bundled corpora, default rules) is
in it.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.manifests import DEPLOY, REPO

PACKAGES = ("finsentinel", "ingest", "models", "stream", "alerts")
#: Not needed at run time: docs next to the code, and the model, which the
#: Dockerfiles copy to /opt/finsentinel/models/default themselves.
NOT_SHIPPED = ("README.md",)


def _context_filter(directory: str, names: list[str]) -> set[str]:
    """What the .dockerignore keeps out of the copied context (build outputs, caches)."""
    rel = Path(directory).resolve().relative_to(REPO)
    return {
        n
        for n in names
        if n == "__pycache__" or n.endswith(".pyc") or _ignored((rel / n).as_posix())
    }


def _context(tmp_path: Path) -> Path:
    ignore = (DEPLOY / "docker" / "Dockerfile.cpu.dockerignore").read_text().splitlines()
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    assert set(allowed) == {"pyproject.toml", "README.md", *PACKAGES}
    context = tmp_path / "context"
    context.mkdir()
    for name in allowed:
        source = REPO / name
        if not source.exists():
            pytest.fail(f"{name} is missing from the repository: the image build would fail")
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=_context_filter)
        else:
            shutil.copy2(source, context / name)
    return context


def _ignored(rel: str) -> bool:
    """True for a path the image's .dockerignore keeps out of the build context (a pattern
    that names a directory keeps out everything under it, as Docker does)."""
    lines = (DEPLOY / "docker" / "Dockerfile.cpu.dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and line[0] not in "#!*"]
    return any(
        fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern.rstrip("/") + "/")
        for pattern in patterns
    )


def _data_files() -> set[str]:
    out = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            rel = path.relative_to(REPO)
            if (
                path.is_file()
                and path.suffix not in (".py", ".pyc")
                and "__pycache__" not in rel.parts
                and rel.parts[:2] != ("models", "default")
                and path.name not in NOT_SHIPPED
                and not _ignored(rel.as_posix())
            ):
                out.add(rel.as_posix())
    return out


def test_wheel_carries_every_data_file(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
    context = _context(tmp_path)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    out = subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_data_files() - shipped)
    assert not missing, (
        f"not packaged, so missing from the images: {missing}; add their patterns to "
        "[tool.setuptools.package-data] in pyproject.toml"
    )
