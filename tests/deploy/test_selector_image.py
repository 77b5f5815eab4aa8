"""The slim selector image (images/selector.Dockerfile) holds everything ``caig serve selector`` imports, and
nothing of the training stack: read with the import and install closures of test_image_environments."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from tests.deploy.test_image_environments import Imported, Root, closure, image_install, image_needs

from caig.orchestration.images import SELECTOR_IMAGE

# Where the selector's code starts: the console script (loaded), then what `caig serve selector` imports.
SELECTOR_ROOTS = [
    Root("console script caig = caig.cli:main", (Imported("caig.cli", (), False, False),), "loaded"),
    Root(
        "caig serve selector",
        tuple(
            Imported(module, (), True, False)
            for module in (
                "caig.bandit.selector",
                "caig.serving.openapi",
                "caig.serving.selector_models",
                "caig.serving.server",
            )
        ),
    ),
]


def test_the_selector_image_provides_what_the_selector_imports():
    install, python = image_install(SELECTOR_IMAGE)
    have, missing = closure(install, python)
    assert not missing, f"not installed here, so unknown: {sorted(missing)}"
    needs, outside = image_needs(SELECTOR_ROOTS)
    lacking = sorted({n.module for n in needs if not set(n.distributions) & have})
    assert not lacking and not outside, (lacking, outside)
    assert {"kserve", "redis", "feast"} <= have


def test_the_selector_image_has_no_torch_or_cuda():
    install, python = image_install(SELECTOR_IMAGE)
    have, _ = closure(install, python)
    heavy = {d for d in have if d in {"torch", "transformers", "deepspeed", "diffusers", "peft"}}
    heavy |= {d for d in have if canonicalize_name(d).startswith("nvidia-")}
    assert not heavy, heavy
