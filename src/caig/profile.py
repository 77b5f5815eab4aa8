"""Profiles: one YAML file per deployment target (``configs/local.yaml``, ``configs/production.yaml``).

A profile holds one section per stage; each section becomes that stage's typed config dataclass. The same
``Profile`` object reaches the CLI, the KFP components and the tests. ``--set a.b=value`` overrides are
applied before validation, so they are checked exactly like the file.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from caig.bandit.config import BanditConfig
from caig.data.config import DataConfig
from caig.deploy.config import DeployConfig
from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.generate.config import GenerateConfig
from caig.mllm.config import MLLMConfig, PretrainConfig
from caig.orchestration.config import OrchestrationConfig
from caig.pcpo.config import PCPOConfig
from caig.render.config import RenderConfig
from caig.reward.config import RewardConfig
from caig.reward.curriculum.config import CurriculumConfig, check_curriculum
from caig.serving.config import ServingConfig
from caig.typed_config import as_dict, build_config, moved_key_message
from caig.world.config import WorldConfig

CONFIG_DIR_ENV = "CAIG_CONFIG_DIR"


@dataclass
class Profile:
    """Every stage's config, as loaded from one profile file."""

    name: str = "local"  # the profile's name; a file that sets none takes its file name (local, production)
    world: WorldConfig = field(default_factory=WorldConfig)  # the simulated world: sizes and hidden effects
    data: DataConfig = field(default_factory=DataConfig)  # ingestion, validation, pairs, release import
    features: FeaturesConfig = field(default_factory=FeaturesConfig)  # the Feast store and its sources
    bandit: BanditConfig = field(default_factory=BanditConfig)  # the creative selector and its simulation
    mllm: MLLMConfig = field(default_factory=MLLMConfig)  # the multimodal LLM (LLaVA-NeXT) of the PM and RM
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # e-commerce pre-training (Table 3)
    reward: RewardConfig = field(default_factory=RewardConfig)  # the pairwise CTR reward model (Table 1)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)  # the RM's optional stages before
    #   the logged pairs (off in the paper)
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)  # pipeline steps
    render: RenderConfig = field(default_factory=RenderConfig)  # the background generator
    deploy: DeployConfig = field(default_factory=DeployConfig)  # caig deploy / promote and the KFP sync
    pcpo: PCPOConfig = field(default_factory=PCPOConfig)  # PCPO / DPO rounds of the prompt model
    serving: ServingConfig = field(default_factory=ServingConfig)  # the PM, RM and render servers
    generate: GenerateConfig = field(default_factory=GenerateConfig)  # new creatives for the catalog

    def __post_init__(self) -> None:
        check_curriculum(self.reward, self.curriculum)  # the two sections together

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain data, e.g. to pass to a KFP component as one parameter."""
        return as_dict(self)


def config_dirs() -> list[Path]:
    """Where named profiles are looked up: $CAIG_CONFIG_DIR, ./configs, then the source tree's configs/."""
    dirs = []
    if os.environ.get(CONFIG_DIR_ENV):
        dirs.append(Path(os.environ[CONFIG_DIR_ENV]))
    dirs.append(Path.cwd() / "configs")
    dirs.append(Path(__file__).resolve().parents[2] / "configs")
    return dirs


def resolve_profile_path(profile: str) -> Path:
    """A profile name (``local``) or a path to a YAML file, resolved to an existing file."""
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml"):
        if candidate.is_file():
            return candidate
        raise UserError(
            f"profile file '{profile}' does not exist; pass an existing YAML file or a profile name"
        )
    for directory in config_dirs():
        path = directory / f"{profile}.yaml"
        if path.is_file():
            return path
    names = sorted({p.stem for d in config_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise UserError(f"unknown profile '{profile}'; choose one of: {', '.join(names) or '(none found)'}")


def load_profile(profile: str = "local", overrides: typing.Sequence[str] = ()) -> Profile:
    """Load and validate a profile, applying ``key.path=value`` overrides first."""
    path = resolve_profile_path(profile)
    raw = read_profile_file(path)
    raw.setdefault("name", path.stem)
    for override in overrides:
        apply_override(raw, override)
    return build_config(Profile, raw, "", str(path))


def read_profile_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A profile file's raw mapping; ``extends: NAME`` first loads that profile (a name, or a path relative to
    this file) and lays this file's keys over it, section by section (an overlay changes only what it says)."""
    if path.resolve() in seen:
        raise UserError(f"{path}: 'extends' loops back to itself ({' -> '.join(str(p) for p in seen)})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a profile must be a mapping of stage sections")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise UserError(f"{path}: 'extends' must name a profile, e.g. extends: production")
    relative = path.parent / base
    base_path = (
        relative
        if relative.suffix in (".yaml", ".yml") and relative.is_file()
        else resolve_profile_path(base)
    )
    return merge_sections(read_profile_file(base_path, (*seen, path.resolve())), raw)


def merge_sections(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` laid over ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_sections(merged[key], value)
        else:
            merged[key] = value
    return merged


def profile_from_dict(data: dict[str, Any], source: str = "<dict>") -> Profile:
    """Rebuild a profile from ``Profile.to_dict()`` output (how KFP components receive it)."""
    return build_config(Profile, data, "", source)


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one ``section.key=value`` override (value parsed as YAML) to raw profile data in place."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(
            f"bad override '{override}'; write it as --set section.key=value, e.g. world.n_products=50"
        )
    _check_override_path(key, override)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"bad override '{override}': '{part}' is not a section")
    node[parts[-1]] = value


def _check_override_path(key: str, override: str) -> None:
    cls: Any = Profile
    walked = []
    for part in key.split("."):
        names = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None
        if names is None:
            break
        moved = getattr(cls, "MOVED_KEYS", {})
        if part in moved:
            raise UserError(
                moved_key_message(".".join([*walked, part]), moved[part], f"bad override '{override}'")
            )
        if part not in names:
            where = ".".join(walked) or "the profile"
            raise UserError(
                f"bad override '{override}': unknown key '{'.'.join([*walked, part])}'; "
                f"keys of {where}: {', '.join(sorted(names))}"
            )
        walked.append(part)
        cls = typing.get_type_hints(cls)[part]
