"""Reading request fields (products, base64 images, numbers) and writing base64 PNGs, with the field named.

Every problem raises ``InvalidRequest(field, message)``; the KServe doors turn it into ``InvalidInput`` (400).
"""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from caig.bandit.types import InvalidRequest
from caig.render.label import save_png
from caig.serving.config import ServingConfig
from caig.world.loaded import World


def instances(payload: Any, config: ServingConfig) -> list[dict[str, Any]]:
    """The ``instances`` of a V1 body: a non-empty list of objects, at most ``max_instances``."""
    if not isinstance(payload, Mapping):
        raise InvalidRequest("body", 'must be a JSON object {"instances": [...]}')
    items = payload.get("instances")
    if items is None:
        raise InvalidRequest("instances", 'missing; send {"instances": [{...}, ...]}')
    if not isinstance(items, list) or not items:
        raise InvalidRequest("instances", "must be a non-empty list of objects")
    if len(items) > config.max_instances:
        raise InvalidRequest("instances", f"at most {config.max_instances} per request, got {len(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"instances[{i}]", "must be a JSON object")
    return list(items)


def decode_image(value: Any, field: str, config: ServingConfig) -> Image.Image:
    """A base64-encoded image (PNG; any format PIL reads) as a loaded PIL image."""
    if not isinstance(value, str | bytes) or not value:
        raise InvalidRequest(field, "must be a base64-encoded PNG string")
    if isinstance(value, str) and value.startswith("data:"):
        value = value.partition(",")[2]  # a data URL: data:image/png;base64,....
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(field, "is not valid base64; encode the PNG bytes with base64") from None
    if len(raw) > config.max_image_bytes:
        raise InvalidRequest(field, f"image of {len(raw)} bytes exceeds {config.max_image_bytes}")
    try:
        image = Image.open(io.BytesIO(raw))
        if max(image.size) > config.max_image_side:
            raise InvalidRequest(
                field, f"image {image.size} is larger than {config.max_image_side} px a side"
            )
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidRequest(field, "cannot be read as an image; send base64 PNG bytes") from None
    return image


def encode_png(image: Image.Image) -> str:
    """Base64 of the PNG file ``caig.render.label.save_png`` writes: the AI-generated label travels with it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_png(image, Path(tmp) / "ad.png")
        return base64.b64encode(path.read_bytes()).decode("ascii")


def text(value: Any, field: str) -> str:
    """A non-empty string field."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(field, f"must be a non-empty string, got {_kind(value)}")
    return value


def integer(value: Any, field: str, low: int, high: int) -> int:
    """An integer field in ``[low, high]`` (JSON numbers with no fraction accepted; booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise InvalidRequest(field, f"must be an integer, got {_kind(value)}")
    if not low <= int(value) <= high:
        raise InvalidRequest(field, f"must be between {low} and {high}, got {int(value)}")
    return int(value)


def number(value: Any, field: str, low: float, high: float) -> float:
    """A finite number field in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidRequest(field, f"must be a number, got {_kind(value)}")
    if not low <= float(value) <= high:
        raise InvalidRequest(field, f"must be between {low} and {high}, got {value}")
    return float(value)


def product_attributes(value: Any, field: str, attributes: Sequence[str]) -> dict[str, Any]:
    """A product given by its attributes (title, category, tags, colour, price as the profile names them)."""
    if not isinstance(value, Mapping):
        raise InvalidRequest(field, f"must be an object with {list(attributes)}, got {_kind(value)}")
    out: dict[str, Any] = {}
    for name in dict.fromkeys(["title", *attributes]):  # the title fills the templates' caption slot
        if name not in value or value[name] is None:
            raise InvalidRequest(f"{field}.{name}", "missing product attribute")
        item = value[name]
        if name == "tags":
            tags = [item] if isinstance(item, str) else item
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise InvalidRequest(f"{field}.tags", "must be a list of strings")
            out[name] = tags
        elif name == "price":
            out[name] = number(item, f"{field}.price", 0.0, 1e9)
        else:
            out[name] = text(item, f"{field}.{name}")
    return out


def world_product(world: World | None, product_id: Any, field: str) -> dict[str, Any]:
    """A catalog row of the run's world (attributes as lists and floats), by product id."""
    product_id = text(product_id, field)
    if world is None:
        raise InvalidRequest(field, "this server has no world catalog; send product attributes and an image")
    if product_id not in world.products.index:
        raise InvalidRequest(field, f"unknown product '{product_id}' (not in the run's catalog)")
    row = world.products.loc[product_id].to_dict()
    if "tags" in row:  # a real catalog may have no tags
        row["tags"] = list(row["tags"])
    return {"product_id": product_id, **row}


def creative_image(
    world: World | None, creatives: Any, creative_id: Any, field: str
) -> tuple[str, Image.Image]:
    """(product id, image) of a creative of the run's world; ``creatives`` is its table indexed by id."""
    creative_id = text(creative_id, field)
    if world is None:
        raise InvalidRequest(field, "this server has no world; send the images as base64 PNG instead")
    if creative_id not in creatives.index:
        raise InvalidRequest(field, f"unknown creative '{creative_id}' (not in the run's creatives)")
    row = creatives.loc[creative_id]
    return str(row["product_id"]), Image.open(world.directory / row["image_path"]).convert("RGB")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
