"""Fixtures of the deployment tests: the files under ``deploy/`` parsed once per session."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, kustomize, raw_resources


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """``deploy/compose.yaml``."""
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="session")
def k8s_base() -> list[dict[str, Any]]:
    """The rendered base; without kubectl its resource files as written (no generators)."""
    base = DEPLOY / "k8s" / "base"
    return kustomize(base) or raw_resources(base)


@pytest.fixture(scope="session")
def k8s_gpu() -> list[dict[str, Any]]:
    """The rendered GPU overlay (needs kubectl for the patches)."""
    docs = kustomize(DEPLOY / "k8s" / "overlays" / "gpu")
    if docs is None:
        pytest.skip("kubectl is not installed: rendering the GPU overlay's patches needs kustomize")
    return docs
