"""The world's public vocabulary: product categories, colours and background terms.

Everything here is what a real advertiser would know (words, category names, how products look). What
the words do to clicks is hidden in ``caig.world.oracle``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Background term groups, in the order a description names them.
GROUPS = ("scene", "surface", "prop", "framing", "palette", "lighting", "style", "eye_catching")


@dataclass(frozen=True)
class Category:
    """A product category: its look, its size and the scenes it belongs in."""

    name: str
    shape: str  # drawing routine in caig.world.products
    size: str  # small | medium | large: which framings and props are at its scale
    good_scenes: tuple[str, ...]
    bad_scenes: tuple[str, ...]
    calm: bool  # eye-catching effects clash with this category's image (a "scene" mismatch)
    colours: tuple[str, ...]  # colours products of this category come in
    tags: tuple[str, ...]
    price: tuple[float, float]  # price range


@dataclass(frozen=True)
class Colour:
    name: str
    rgb: tuple[int, int, int]
    hue: float | None  # degrees; None for neutrals (black, white, grey)


COLOURS: dict[str, Colour] = {c.name: c for c in (
    Colour("red", (200, 30, 40), 355.0),
    Colour("orange", (235, 120, 25), 28.0),
    Colour("yellow", (240, 205, 40), 50.0),
    Colour("green", (40, 150, 60), 130.0),
    Colour("teal", (20, 150, 150), 180.0),
    Colour("blue", (30, 70, 200), 225.0),
    Colour("purple", (120, 50, 170), 280.0),
    Colour("pink", (235, 120, 170), 330.0),
    Colour("black", (25, 25, 28), None),
    Colour("white", (240, 240, 236), None),
    Colour("brown", (120, 75, 40), 25.0),
)}

CATEGORIES: tuple[Category, ...] = (
    Category("sneakers", "shoe", "medium", ("city street", "gym floor", "sandy beach"),
             ("bathroom vanity", "kitchen counter"), False,
             ("red", "blue", "white", "black", "orange"), ("sport", "running", "casual"), (40, 160)),
    Category("handbag", "bag", "medium", ("city street", "cafe table", "photo studio"),
             ("gym floor", "snowy mountain"), False,
             ("brown", "black", "red", "pink", "white"), ("leather", "fashion", "everyday"), (60, 400)),
    Category("wristwatch", "watch", "small", ("office desk", "photo studio", "cafe table"),
             ("sandy beach", "gym floor"), True,
             ("black", "white", "blue", "brown"), ("luxury", "steel", "classic"), (80, 900)),
    Category("lipstick", "lipstick", "small", ("bathroom vanity", "photo studio", "flower garden"),
             ("snowy mountain", "gym floor", "office desk"), False,
             ("red", "pink", "purple", "orange"), ("beauty", "matte", "makeup"), (10, 45)),
    Category("sofa", "sofa", "large", ("living room", "photo studio"),
             ("cafe table", "bathroom vanity", "office desk", "kitchen counter"), True,
             ("blue", "green", "white", "brown", "teal"), ("furniture", "comfort", "home"), (300, 2000)),
    Category("table lamp", "lamp", "medium", ("living room", "office desk", "cafe table"),
             ("sandy beach", "gym floor", "snowy mountain"), True,
             ("yellow", "white", "black", "teal"), ("lighting", "home", "decor"), (25, 180)),
    Category("headphones", "headphones", "small", ("office desk", "city street", "gym floor"),
             ("bathroom vanity", "kitchen counter"), False,
             ("black", "white", "red", "blue", "purple"), ("audio", "wireless", "music"), (30, 350)),
    Category("perfume bottle", "perfume", "small", ("bathroom vanity", "flower garden", "photo studio"),
             ("gym floor", "kitchen counter", "city street"), True,
             ("pink", "purple", "yellow", "teal"), ("fragrance", "floral", "gift"), (30, 200)),
    Category("coffee mug", "mug", "small", ("kitchen counter", "cafe table", "office desk"),
             ("snowy mountain", "gym floor", "sandy beach"), True,
             ("white", "red", "teal", "yellow", "black"), ("ceramic", "kitchen", "coffee"), (8, 35)),
    Category("backpack", "backpack", "medium", ("pine forest", "snowy mountain", "city street"),
             ("bathroom vanity", "living room"), False,
             ("green", "orange", "black", "blue"), ("outdoor", "hiking", "travel"), (35, 220)),
    Category("plant pot", "pot", "medium", ("living room", "flower garden", "kitchen counter"),
             ("gym floor", "city street", "snowy mountain"), True,
             ("white", "brown", "teal", "orange"), ("garden", "ceramic", "decor"), (12, 90)),
    Category("sunglasses", "glasses", "small", ("sandy beach", "city street", "cafe table"),
             ("kitchen counter", "bathroom vanity", "office desk"), False,
             ("black", "brown", "red", "blue"), ("summer", "eyewear", "uv"), (20, 300)),
)


@dataclass(frozen=True)
class Term:
    """A background term: its group, its words, and drawing hints for the procedural renderer."""

    text: str
    group: str
    rgb: tuple[int, int, int] = (128, 128, 128)  # its main colour when drawn
    size: str = ""  # props and framings: small | medium | large
    hue: float | None = None  # palettes: hue in degrees, None for neutrals


TERMS: tuple[Term, ...] = (
    # scenes: where the product stands
    Term("kitchen counter", "scene", (214, 200, 180)),
    Term("living room", "scene", (196, 170, 140)),
    Term("sandy beach", "scene", (236, 214, 160)),
    Term("pine forest", "scene", (40, 90, 50)),
    Term("city street", "scene", (110, 110, 120)),
    Term("photo studio", "scene", (225, 225, 230)),
    Term("bathroom vanity", "scene", (200, 225, 235)),
    Term("office desk", "scene", (150, 120, 95)),
    Term("flower garden", "scene", (90, 160, 80)),
    Term("snowy mountain", "scene", (235, 240, 250)),
    Term("gym floor", "scene", (60, 60, 66)),
    Term("cafe table", "scene", (170, 120, 80)),
    # surfaces: what it stands on
    Term("white marble", "surface", (235, 235, 232)),
    Term("oak wood", "surface", (165, 115, 70)),
    Term("raw concrete", "surface", (140, 140, 138)),
    Term("soft velvet", "surface", (120, 20, 50)),
    Term("woven linen", "surface", (215, 205, 185)),
    Term("smooth stone", "surface", (110, 105, 100)),
    # props, each at a scale
    Term("tiny pebbles", "prop", (150, 150, 150), size="small"),
    Term("fresh lemons", "prop", (245, 220, 50), size="small"),
    Term("coffee beans", "prop", (90, 55, 30), size="small"),
    Term("rose petals", "prop", (210, 40, 70), size="small"),
    Term("stacked books", "prop", (60, 90, 160), size="medium"),
    Term("potted cactus", "prop", (70, 140, 70), size="medium"),
    Term("monstera leaves", "prop", (30, 120, 60), size="large"),
    Term("floor cushions", "prop", (200, 150, 90), size="large"),
    # framings: how close the camera is
    Term("macro close-up", "framing", size="small"),
    Term("tabletop shot", "framing", size="medium"),
    Term("eye-level view", "framing", size="large"),
    Term("wide room view", "framing", size="large"),
    # palettes
    Term("warm beige", "palette", (225, 205, 175), hue=None),
    Term("pastel pink", "palette", (245, 195, 210), hue=335.0),
    Term("deep navy", "palette", (25, 35, 90), hue=228.0),
    Term("emerald green", "palette", (20, 130, 80), hue=150.0),
    Term("sunset orange", "palette", (245, 140, 60), hue=25.0),
    Term("lavender purple", "palette", (185, 160, 220), hue=270.0),
    Term("sky blue", "palette", (150, 200, 240), hue=205.0),
    Term("charcoal grey", "palette", (60, 62, 66), hue=None),
    Term("golden yellow", "palette", (240, 200, 70), hue=48.0),
    # lighting
    Term("soft daylight", "lighting", (255, 255, 245)),
    Term("golden hour", "lighting", (255, 180, 90)),
    Term("studio softbox", "lighting", (255, 255, 255)),
    Term("moody shadows", "lighting", (20, 20, 30)),
    Term("candlelight", "lighting", (255, 150, 60)),
    # styles
    Term("minimalist", "style"),
    Term("luxurious", "style", (212, 175, 55)),
    Term("rustic", "style", (130, 90, 50)),
    Term("playful", "style", (250, 90, 180)),
    Term("cinematic", "style", (10, 10, 10)),
    # generic eye-catching effects: lift CTR almost everywhere, clash with calm products
    Term("sparkling glitter", "eye_catching", (255, 255, 220)),
    Term("neon glow", "eye_catching", (255, 40, 220)),
    Term("fireworks burst", "eye_catching", (255, 200, 40)),
    Term("bold sale banner", "eye_catching", (230, 20, 30)),
    Term("dazzling lens flare", "eye_catching", (255, 250, 200)),
)

TERMS_BY_TEXT: dict[str, Term] = {t.text: t for t in TERMS}
CATEGORIES_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}


def terms_in_group(group: str) -> tuple[Term, ...]:
    """All terms of one group, in vocabulary order."""
    return tuple(t for t in TERMS if t.group == group)


def scene_fit(category: Category, scene: str) -> int:
    """+1 where the scene suits the category, -1 where it clashes, 0 where it is neutral."""
    if scene in category.good_scenes:
        return 1
    if scene in category.bad_scenes:
        return -1
    return 0


def scale_fit(category: Category, size: str) -> int:
    """+1 for a framing or prop at the product's scale, -1 for one that is two sizes off or absurd."""
    order = {"small": 0, "medium": 1, "large": 2}
    gap = abs(order[category.size] - order[size])
    return 1 if gap == 0 else (0 if gap == 1 else -1)
