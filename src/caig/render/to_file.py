"""Render one ad of a world's product to a labelled PNG with a JSON sidecar (``caig render``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from caig.errors import UserError
from caig.render.config import RenderConfig
from caig.render.factory import make_renderer
from caig.render.label import RENDER_KEY, save_png


def render_to_file(
    config: RenderConfig, world_dir: Path, product_id: str, description: str, seed: int, out: Path
) -> dict[str, Any]:
    """Render ``product_id`` of the world at ``world_dir`` and write ``out`` (PNG) and ``out``.json.

    The sidecar holds backend, model, seed, product box, safety result and timing (model load and render).
    """
    from caig.world.loaded import load_world

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the ad is written as PNG; give a file name ending in .png")
    if not out.parent.exists():
        raise UserError(f"--out {out}: directory {out.parent} does not exist; create it first")
    product = load_world(world_dir).product_image(product_id)
    started = time.perf_counter()
    renderer = make_renderer(config)
    loaded = time.perf_counter()
    image = renderer.render(product, description, seed)
    rendered = time.perf_counter()
    save_png(image, out)
    facts = json.loads(image.info[RENDER_KEY])
    summary = {
        **facts,
        "product_id": product_id,
        "description": description,
        "prompt": image.info["Description"],
        "image": str(out),
        "image_size": list(image.size),
        "label": "AI-generated (PNG text 'AI-Generated: true' and XMP IPTC DigitalSourceType)",
        "timing": {"load_s": round(loaded - started, 3), "render_s": round(rendered - loaded, 3)},
    }
    summary.pop("seconds", None)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
