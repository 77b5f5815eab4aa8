"""Image names: one registry prefix and tag for every image, defaults when the variables are unset."""

from __future__ import annotations

import pytest

from caig import __version__
from caig.orchestration.images import image, step_image, train_image


def test_defaults(monkeypatch):
    monkeypatch.delenv("CAIG_IMAGE_REGISTRY", raising=False)
    monkeypatch.delenv("CAIG_IMAGE_TAG", raising=False)
    assert step_image() == f"ghcr.io/caig/caig-step:{__version__}"
    assert train_image() == f"ghcr.io/caig/caig-train:{__version__}"


def test_registry_and_tag_from_environment(monkeypatch):
    monkeypatch.setenv("CAIG_IMAGE_REGISTRY", "registry.example.com/ml/")
    monkeypatch.setenv("CAIG_IMAGE_TAG", "2026.11.1")
    assert image("caig-serve") == "registry.example.com/ml/caig-serve:2026.11.1"


def test_unknown_image_is_named():
    with pytest.raises(ValueError, match="unknown image 'caig-gpu'"):
        image("caig-gpu")
