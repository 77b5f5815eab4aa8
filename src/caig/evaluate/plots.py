"""Figures of the offline evaluation: match rate and CTR uplift by round (paper Figure 4), sample ads."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402


def plot_by_round(series: dict[str, list[float]], ylabel: str, title: str, out: Path) -> Path:
    """One line per method over rounds (round 0 = the pre-trained PM)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
    for method, values in sorted(series.items()):
        ax.plot(range(len(values)), values, marker="o", label=method)
    ax.set_xlabel("round (0 = pre-trained PM)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def sample_grid(
    rows: list[tuple[str, list[tuple[str, Image.Image, str]]]], out: Path, cell: int = 128
) -> Path:
    """A grid of ads: one row per product (its title), one column per (label, image, description)."""
    n_cols = max(len(cols) for _, cols in rows)
    label_h = 30
    sheet = Image.new("RGB", (n_cols * cell, len(rows) * (cell + label_h) + 16), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, (title, cols) in enumerate(rows):
        y = 16 + r * (cell + label_h)
        draw.text((2, y - 14), title, fill="black", font=font)
        for c, (label, image, description) in enumerate(cols):
            sheet.paste(image.convert("RGB").resize((cell, cell)), (c * cell, y))
            draw.text((c * cell + 2, y + cell + 1), label[:22], fill="black", font=font)
            draw.text((c * cell + 2, y + cell + 13), description[:22], fill=(90, 90, 90), font=font)
    sheet.save(out)
    return out
