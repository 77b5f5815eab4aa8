"""Find a server's model and world in a run directory, so one ``--run DIR`` serves every layout we write.

Looked for, first hit wins (an explicit ``--model`` or the profile's ``serving.pm_model`` / ``rm_model`` come
before all of them):

- PM: ``DIR`` itself (a model directory, ``config.json``), ``DIR/model``, ``DIR/pretrain/model``,
  ``DIR/pm/model``, then the ``pretrain-pm`` step's ``pm/model`` that ``DIR/steps.json`` of a ``caig run
  --local`` records. Its LoRA adapter: the last finished round (``round-NN/round.json``) of a PCPO output in
  ``DIR`` or of the run's ``optimize-pm*`` step whose ``pcpo.json`` says ``pcpo``.
- RM: ``DIR`` itself (``rm.json``), ``DIR/rm``, then the ``train-rm`` step's ``rm`` output.
- world: ``DIR`` itself (``world.json``), ``DIR/world``, then the ``build-world`` step's ``world`` output.

A PCPO output mounted alone (what the training pipeline registers) has no base model; its adapter names
the PM it was trained on (``base_model_name_or_path``), used when that directory exists here.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from caig.errors import UserError


def local_path(uri: str, field: str) -> Path:
    """A local directory from a path or ``file://`` URI (remote URIs are KServe's storage initializer's job)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    raise UserError(
        f"{field}: {uri} is a remote URI; mount it (KServe's storageUri puts it at /mnt/models) "
        "and pass the local path"
    )


def _steps(run: Path) -> dict[str, dict[str, str]]:
    path = run / "steps.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _step_output(run: Path, step: str, output: str) -> Path | None:
    found = _steps(run).get(step, {}).get(output)
    return Path(found) if found else None


def find_world(run: Path) -> Path | None:
    """The run's world directory (catalog, creatives, images), or None when the run has none."""
    candidates = [run, run / "world", _step_output(run, "build-world", "world")]
    return next((p for p in candidates if p is not None and (p / "world.json").is_file()), None)


def find_pm(run: Path, explicit: str = "") -> Path:
    """The PM's model directory (``config.json``): ``explicit`` if given, else searched in ``run``."""
    if explicit:
        path = local_path(explicit, "--model / serving.pm_model")
        if not (path / "config.json").is_file():
            raise UserError(
                f"--model / serving.pm_model: {path} holds no config.json (a LLaVA-NeXT directory)"
            )
        return path
    step = _step_output(run, "pretrain-pm", "pm")
    candidates = [run, run / "model", run / "pretrain" / "model", run / "pm" / "model"]
    candidates += [step / "model"] if step else []
    base = _adapter_base(run)
    candidates += [base] if base else []
    for path in candidates:
        if (path / "config.json").is_file():
            return path
    raise UserError(
        f"--run {run}: no prompt model found (looked in {run}, model/, pretrain/model/, pm/model/ and "
        "steps.json's pretrain-pm step); run `caig run --local --out DIR` or pass --model DIR"
    )


def find_adapter(run: Path) -> Path | None:
    """The LoRA adapter of the last finished PCPO round in ``run`` (or its pcpo step), or None."""
    for pcpo_dir in [run, *_pcpo_steps(run)]:
        rounds = sorted(pcpo_dir.glob("round-*/round.json"), key=lambda p: p.parent.name)
        if rounds and (rounds[-1].parent / "adapter" / "adapter_config.json").is_file():
            return rounds[-1].parent / "adapter"
    return None


def _pcpo_steps(run: Path) -> list[Path]:
    found = []
    for step, outputs in sorted(_steps(run).items()):
        out = Path(outputs["run"]) if step.startswith("optimize-pm") and "run" in outputs else None
        pcpo = out / "pcpo.json" if out is not None else None
        if pcpo is not None and pcpo.is_file() and json.loads(pcpo.read_text()).get("method") == "pcpo":
            found.append(out)
    return found


def _adapter_base(run: Path) -> Path | None:
    adapter = find_adapter(run)
    if adapter is None:
        return None
    base = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    return Path(base) if base else None


def find_rm(run: Path, explicit: str = "") -> Path:
    """The RM directory (``rm.json`` + heads): ``explicit`` if given, else searched in ``run``."""
    if explicit:
        path = local_path(explicit, "--model / serving.rm_model")
        if not (path / "rm.json").is_file():
            raise UserError(f"--model / serving.rm_model: {path} holds no rm.json (a `caig rm train` output)")
        return path
    step = _step_output(run, "train-rm", "rm")
    for path in [run, run / "rm", *([step] if step else [])]:
        if (path / "rm.json").is_file():
            return path
    raise UserError(
        f"--run {run}: no reward model found (looked in {run}, rm/ and steps.json's train-rm step); "
        "run `caig run --local --out DIR` or pass --model DIR"
    )
