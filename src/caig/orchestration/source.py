"""Where the pipeline doors live: ``components/`` and ``pipelines/`` at the top of a source checkout.

They are not part of the installed ``caig`` package (the container images need only the library: KFP
embeds each component's code in the compiled YAML), so the CLI puts the checkout on ``sys.path`` before
importing them. ``run_local_pipeline`` runs one of them on this machine (``caig run --local``, the demo, the
production smoke run).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caig.errors import UserError

if TYPE_CHECKING:
    from caig.profile import Profile


def checkout_root() -> Path:
    """The source checkout this package was installed from (``pip install -e .``)."""
    root = Path(__file__).resolve().parents[3]
    if not (
        (root / "pipelines" / "__init__.py").is_file() and (root / "components" / "__init__.py").is_file()
    ):
        raise UserError(
            "the KFP pipelines live in a source checkout (components/, pipelines/) and none was found above "
            f"{Path(__file__).parent}; clone the repository and `pip install -e .` there"
        )
    return root


def ensure_importable() -> Path:
    """Put the checkout first on ``sys.path`` so ``import pipelines`` finds ours; return the checkout."""
    root = checkout_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def run_local_pipeline(
    profile: Profile,
    out: Path,
    seed: int = 0,
    name: str = "caig-training",
    arguments: dict[str, Any] | None = None,
) -> dict:
    """Run a pipeline on this machine with the KFP local runner into run directory ``out``; return the run's
    flat metrics."""
    ensure_importable()
    from pipelines.local import run_local

    return run_local(profile, Path(out), seed=seed, name=name, arguments=arguments)
