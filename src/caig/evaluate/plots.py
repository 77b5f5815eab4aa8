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


def plot_online(result: dict, out: Path) -> Path:
    """The simulated A/B: CTR of each arm set over the same traffic, and the lift per category."""
    sets = ["existing", "pcpo", "dpo"]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 3.8), dpi=120, gridspec_kw={"width_ratios": [1, 2.6]}
    )
    ctr = [result["ctr_by_arm_set"][s] for s in sets]
    left.bar(sets, ctr, color=["#999999", "#1f77b4", "#ff7f0e"])
    for i, value in enumerate(ctr):
        lift = "" if i == 0 else f"\n{result[f'ctr_lift_{sets[i]}']:+.1%}"
        left.text(i, value, f"{value:.4f}{lift}", ha="center", va="bottom", fontsize=8)
    left.set_ylim(0, max(ctr) * 1.3)
    left.set_ylabel("CTR over the simulated traffic")
    left.set_title(f"{result['impressions']:,} impressions, {result['products']} products", fontsize=9)
    categories = sorted(result["ctr_lift_by_category"])
    x = range(len(categories))
    for offset, method in ((-0.2, "pcpo"), (0.2, "dpo")):
        lifts = [result["ctr_lift_by_category"][c][method] or 0.0 for c in categories]
        right.bar([i + offset for i in x], lifts, width=0.4, label=method)
    right.axhline(0, color="black", linewidth=0.6)
    right.set_xticks(list(x), categories, rotation=40, ha="right", fontsize=7)
    right.set_ylabel("CTR lift over the logged creatives")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
