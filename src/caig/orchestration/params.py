"""The profile as one pipeline parameter, and back into a typed ``Profile``.

A KFP pipeline passes the profile to every step as one parameter: ``Profile.to_dict()`` as JSON text.
Not as a ``dict`` parameter: KFP carries those as protobuf ``Struct`` values, which cannot hold ``null``
(``data.pairs.max_ratio: null`` fails to compile) and turn every number into a double (``300`` arrives
as ``300.0``). ``profile_from_parameter`` also accepts a dict, turning integral floats back into ints
where the profile's dataclass says ``int``, and validates with ``caig.profile.profile_from_dict`` like
any profile file.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Any, Union

from caig.errors import UserError
from caig.profile import Profile, profile_from_dict
from caig.world.config import WorldConfig


def profile_parameter(profile: Profile) -> str:
    """The value of a pipeline's ``profile`` parameter: the profile as JSON text, in field order."""
    return json.dumps(profile.to_dict())


def profile_from_parameter(
    value: dict[str, Any] | str, source: str = "pipeline parameter 'profile'"
) -> Profile:
    """The ``Profile`` a pipeline step received as a dict (or a JSON string of one)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise UserError(f"{source}: not valid JSON ({err.msg}); pass Profile.to_dict() output") from None
    if not isinstance(value, dict):
        raise UserError(f"{source}: must be a mapping of profile sections, got {type(value).__name__}")
    return profile_from_dict(restore_ints(Profile, value), source)


def with_run_parameters(profile: Profile, rounds: int, beta: float, base_model: str) -> Profile:
    """``profile`` with a run's parameters applied: PCPO/DPO ``rounds`` and ``beta``, and the base model.

    These are the knobs a user sets per run in the Kubeflow UI; they land in the profile (and are validated
    with it), so every step sees one consistent config. ``base_model`` empty keeps the profile's model; a
    path (a mounted volume below ``orchestration.model_mount_path``) loads LLaVA-NeXT from there.
    """
    data = profile.to_dict()
    data["pcpo"].update(rounds=rounds, beta=beta)
    if base_model:
        data["mllm"].update(preset="llava-v1.6-7b", model_path=base_model)
    return profile_from_dict(data, "pipeline parameters rounds / beta / base_model")


def restore_ints(cls: Any, data: Any) -> Any:
    """A copy of ``data`` with integral floats turned into ints wherever ``cls``'s type hints say int."""
    if dataclasses.is_dataclass(cls) and isinstance(data, dict):
        hints = typing.get_type_hints(cls)
        return {k: restore_ints(hints[k], v) if k in hints else v for k, v in data.items()}
    origin, args = typing.get_origin(cls), typing.get_args(cls)
    if origin in (Union, types.UnionType):
        if int in args and _integral(data):
            return int(data)
        inner = [a for a in args if a is not type(None)]
        return restore_ints(inner[0], data) if len(inner) == 1 else data
    if origin in (list, tuple) and isinstance(data, list):
        item = args[0] if args else Any
        return [restore_ints(item, v) for v in data]
    if origin is dict and isinstance(data, dict):
        vt = args[1] if len(args) > 1 else Any
        return {k: restore_ints(vt, v) for k, v in data.items()}
    if cls is int and _integral(data):
        return int(data)
    return data


def _integral(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer()


def world_as_of(world: WorldConfig) -> str:
    """ "Now" for the simulated world: midnight UTC after its last day of logs (ISO-8601).

    The world's logs lie in the past; checks of freshness and future timestamps run as of its end, so that
    a pipeline on the world passes or fails the same way whatever day it runs.
    """
    start = datetime.fromisoformat(world.start_date).replace(tzinfo=UTC)
    return (start + timedelta(days=world.n_days)).isoformat()


def default_as_of(profile: Profile) -> str:
    """A pipeline's default ``as_of``: the simulated world's end where an empty ``data`` builds the world,
    else empty, so that every run resolves "now" when it starts (``resolve_as_of``), never at compile time."""
    return world_as_of(profile.world) if profile.orchestration.simulated_world else ""


def resolve_as_of(as_of: str) -> str:
    """The run's "now", fixed once for all its steps (ISO-8601, UTC when ``as_of`` names no zone): ``as_of``
    if given, else the current time. Called by the first step of a run, never at compile time, so a
    scheduled run with an empty ``as_of`` checks the logs of the day it runs."""
    value = parse_as_of(as_of)
    return value.isoformat() if as_of else value.isoformat(timespec="seconds")


def parse_as_of(text: str, name: str = "as_of") -> datetime:
    """A pipeline's ``as_of`` parameter as a timezone-aware time; empty means now, naive means UTC."""
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{name} '{text}' is not an ISO-8601 time; write e.g. 2026-10-15T00:00:00+00:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
