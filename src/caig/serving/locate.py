"""Find a server's model and world in a run directory laid out as ``caig.runlayout`` says (one layout).

``RUN/pm/model`` (+ the last ``RUN/pcpo/round-NN/adapter``), ``RUN/rm``, ``RUN/world``: an explicit
``--model`` or the profile's ``serving.pm_model`` / ``rm_model`` comes first; a run in any other layout is
refused in one line that names the expected one.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from caig.errors import UserError
from caig.runlayout import RunLayout


def local_path(uri: str, field: str) -> Path:
    """A local directory from a path or ``file://`` URI (remote URIs are KServe's storage initializer's job)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    raise UserError(
        f"{field}: {uri} is a remote URI; mount it (KServe's storageUri puts it at /mnt/models) "
        "and pass the local path"
    )


def find_world(run: Path) -> Path | None:
    """The run's world directory (``RUN/world``), or None when the run has none."""
    layout = RunLayout(run)
    return layout.world if layout.has_world() else None


def find_pm(run: Path, explicit: str = "") -> Path:
    """The PM's model directory (``config.json``): ``explicit`` if given, else ``RUN/pm/model``."""
    if explicit:
        path = local_path(explicit, "--model / serving.pm_model")
        if not (path / "config.json").is_file():
            raise UserError(
                f"--model / serving.pm_model: {path} holds no config.json (a LLaVA-NeXT directory)"
            )
        return path
    return RunLayout(run).require_pm()


def find_adapter(run: Path) -> Path | None:
    """The LoRA adapter of the last finished PCPO round of the run (``RUN/pcpo/round-NN/adapter``), or None."""
    return RunLayout(run).adapter()


def find_rm(run: Path, explicit: str = "") -> Path:
    """The RM directory (``rm.json`` + heads): ``explicit`` if given, else ``RUN/rm``."""
    if explicit:
        path = local_path(explicit, "--model / serving.rm_model")
        if not (path / "rm.json").is_file():
            raise UserError(f"--model / serving.rm_model: {path} holds no rm.json (a `caig rm train` output)")
        return path
    return RunLayout(run).require_rm()
