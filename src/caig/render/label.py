"""The "AI-generated" label every rendered ad carries (paper A.6), in memory and in its PNG file.

A renderer puts the label and its render facts in ``image.info``; :func:`save_png` writes them as PNG text
chunks, plus an XMP packet with the IPTC digital source type ``trainedAlgorithmicMedia`` (the field that
platforms and C2PA tools read to mark synthetic media). :func:`read_label` reads them back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from caig import __version__

LABEL_KEY = "AI-Generated"
LABEL_VALUE = "true"
RENDER_KEY = "caig:render"  # JSON: backend, model, seed, product box, safety result
IPTC_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
    f"<Iptc4xmpExt:DigitalSourceType>{IPTC_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def label_image(image: Image.Image, backend: str, prompt: str, facts: dict[str, Any]) -> Image.Image:
    """Attach the AI-generated label, the prompt and the render facts to ``image.info``; returns ``image``."""
    image.info[LABEL_KEY] = LABEL_VALUE
    image.info["Software"] = f"caig {__version__} render/{backend}"
    image.info["Description"] = prompt
    image.info[RENDER_KEY] = json.dumps({"backend": backend, **facts}, sort_keys=True)
    return image


def is_labelled(image: Image.Image) -> bool:
    """Whether an in-memory image carries the label (as set by :func:`label_image`)."""
    return image.info.get(LABEL_KEY) == LABEL_VALUE


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a rendered ad as PNG with its label; refuses an unlabelled image so none leaves unmarked."""
    if not is_labelled(image):
        raise ValueError(
            "refusing to save an image without the AI-generated label; render it with a caig "
            "renderer or call caig.render.label.label_image first"
        )
    info = PngImagePlugin.PngInfo()
    for key in (LABEL_KEY, "Software", "Description", RENDER_KEY):
        info.add_itxt(key, str(image.info[key]))
    info.add_itxt("XML:com.adobe.xmp", _XMP)
    path = Path(path)
    image.save(path, format="PNG", pnginfo=info)
    return path


def read_label(path: str | Path) -> dict[str, Any]:
    """The label fields of a saved PNG: ``{"AI-Generated": "true", ..., "caig:render": {...}}``."""
    with Image.open(path) as img:
        text = dict(getattr(img, "text", {}))
    if RENDER_KEY in text:
        text[RENDER_KEY] = json.loads(text[RENDER_KEY])
    return text
