"""The run report's headline: the answers a person opens the report for, read from the run's flat metrics.

One line per question (is the data sound, how good is the RM, does PCPO beat DPO, what did the online A/B
and the selector's priors give) and a small table of PCPO against DPO by round. A line whose stage did not
run in this pipeline is left out; a line whose stage ran without the figure (real data has no oracle) says
``skipped: <reason>``, with the reason the step recorded where it recorded one. Pure: no I/O, no kfp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

METHODS = ("pcpo", "dpo")
NAMES = {"pcpo": "PCPO", "dpo": "DPO"}
ROUNDS_TOPIC = "PCPO vs DPO"
NO_CEILING = "no simulated world: the Bayes pair accuracy needs the world's oracle"
NO_ONLINE = "no online A/B figures recorded"


@dataclass(frozen=True)
class Line:
    """One headline answer: its topic and a sentence of plain text."""

    topic: str
    text: str
    skipped: bool = False


@dataclass(frozen=True)
class RoundTable:
    """PCPO against DPO by round: column names and formatted cells (round 0: the pre-trained PM)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass
class Headline:
    """The headline lines, the by-round table (None without round figures), the numbers for KFP."""

    lines: list[Line] = field(default_factory=list)
    rounds: RoundTable | None = None
    numbers: dict[str, float] = field(default_factory=dict)


def headline(metrics: Mapping[str, Any]) -> Headline:
    """The headline of a run's flat metrics (``metrics.json``)."""
    out = Headline()
    for part in (_data, _reward_model, _rounds, _online, _priors):
        line, numbers = part(metrics, out)
        if line is not None:
            out.lines.append(line)
        out.numbers.update({k: float(v) for k, v in numbers.items() if _number(v)})
    return out


def headline_numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The headline's numbers, for a KFP ``Metrics`` artifact (``log_metric``)."""
    return headline(metrics).numbers


def _data(m: Mapping[str, Any], _: Headline) -> tuple[Line | None, dict]:
    if "data.rows_read" not in m:
        return None, {}
    read, kept, quarantined = (m.get(f"data.rows_{k}") for k in ("read", "valid", "quarantined"))
    text = f"{count(kept)} events kept of {count(read)} read, {count(quarantined)} quarantined"
    if _number(read) and read and _number(quarantined):
        text += f" ({quarantined / read:.2%})"
    reasons = [(k.rsplit(".", 1)[1], v) for k, v in m.items() if k.startswith("data.quarantine_reasons.")]
    reasons = [f"{name} {count(v)}" for name, v in reasons if _number(v) and v]
    text += f" [{', '.join(reasons)}]" if reasons else ""
    if m.get("data.rows_duplicate"):
        text += f", {count(m['data.rows_duplicate'])} duplicates dropped"
    if "data.validation.success" in m:
        failed = f"; validation FAILED ({count(m.get('data.validation.failed'))} expectations)"
        text += "; validation passed" if m["data.validation.success"] else failed
    if _number(m.get("data.rm_pairs.train.pairs")) and _number(m.get("data.rm_pairs.test.pairs")):
        train, test = m["data.rm_pairs.train.pairs"], m["data.rm_pairs.test.pairs"]
        text += f"; RM pairs {count(train)} train / {count(test)} test"
    return Line("Data", text), {"data.rows_kept": kept, "data.rows_quarantined": quarantined}


def _reward_model(m: Mapping[str, Any], _: Headline) -> tuple[Line | None, dict]:
    if not any(k.startswith("rm.") for k in m):
        return None, {}
    accuracy = m.get("rm.pair_accuracy")
    if not _number(accuracy):
        return Line("Reward model", f"skipped: {m.get('rm.skipped', 'no pair accuracy recorded')}", True), {}
    text = f"pair accuracy {accuracy:.3f}"
    text += f" on {count(m['rm.pairs'])} test pairs (both orders)" if _number(m.get("rm.pairs")) else ""
    ceiling, where = m.get("rm.ceiling"), "the world's Bayes accuracy on the same pairs"
    if not _number(ceiling) and _number(m.get("world.bayes_pair_accuracy")):
        ceiling, where = m["world.bayes_pair_accuracy"], "the world's Bayes accuracy on its pairs"
    skill = m.get("rm.skill") if _number(m.get("rm.skill")) else rm_skill(accuracy, ceiling)
    if _number(ceiling):
        text += f", ceiling {ceiling:.3f} ({where})"
        if _number(skill):
            text += f", skill {skill:.2f} (the share of the way from chance, 0.5, to the ceiling)"
    else:
        text += f", ceiling and skill skipped: {m.get('rm.skipped.ceiling', NO_CEILING)}"
    swap = m.get("rm.swap_disagreement")
    if _number(swap):
        text += (
            f"; swap disagreement {swap:.2f} (share of pairs whose winner changes when the ads swap places"
        )
        text += "; the RM mostly picks a position, not an ad)" if swap >= 0.5 else ")"
    numbers = {
        "rm.pair_accuracy": accuracy,
        "rm.ceiling": ceiling,
        "rm.skill": skill,
        "rm.swap_disagreement": swap,
    }
    return Line("Reward model", text), numbers


def rm_skill(accuracy: Any, ceiling: Any) -> float | None:
    """How far above chance the RM is, as a share of the attainable: ``(acc - 0.5) / (ceiling - 0.5)``."""
    if not (_number(accuracy) and _number(ceiling)) or ceiling <= 0.5:
        return None
    return (accuracy - 0.5) / (ceiling - 0.5)


def _rounds(m: Mapping[str, Any], out: Headline) -> tuple[Line | None, dict]:
    series = round_series(m)
    if not series and not any(k.startswith(("pcpo.", "dpo.", "evaluate.")) for k in m):
        return None, {}
    skipped = [
        f"{name} skipped: {m[f'evaluate.skipped.{key}']}"
        for key, name in SKIPPABLE
        if f"evaluate.skipped.{key}" in m
    ]
    if not series:
        return Line(ROUNDS_TOPIC, "; ".join(skipped) or "skipped: no evaluation by round recorded", True), {}
    out.rounds = round_table(series)
    win_rates = {method: m.get(f"{method}.rm_win_rate") for method in METHODS}
    win_rates = {method: [v] for method, v in win_rates.items() if _number(v)}
    verdicts = [_verdict(label, values, FORMATS[label]) for label, values in series.items()]
    if win_rates:
        verdicts.append(_verdict("RM win rate over the pre-trained PM", win_rates, "{:.3f}"))
    last = max(len(v) for values in series.values() for v in values.values()) - 1
    text = f"at the last round ({last}): " + "; ".join(verdicts + skipped)
    numbers = {
        f"{method}.{KEYS[label].removesuffix('_by_round')}.round_{r}": v
        for label, values in series.items()
        for method, by_round in values.items()
        for r, v in enumerate(by_round)
    }
    numbers.update({f"{method}.rm_win_rate": v[0] for method, v in win_rates.items()})
    return Line(ROUNDS_TOPIC, text), numbers


SKIPPABLE = (("match_rate", "oracle match rate"), ("ctr_uplift", "true-CTR uplift"))
SERIES = (
    ("match rate", "match_rate_by_round", "{:.3f}"),
    ("judge match rate", "judge_match_rate_by_round", "{:.3f}"),
    ("true-CTR uplift", "ctr_uplift_by_round", "{:+.3f}"),
)
KEYS = {label: key for label, key, _ in SERIES}
FORMATS = {label: fmt for label, _, fmt in SERIES}


def round_series(m: Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """``{figure: {method: values by round}}`` of the by-round figures this run recorded."""
    series = {}
    for label, key, _ in SERIES:
        values = {method: m.get(f"{method}.{key}") for method in METHODS}
        values = {method: v for method, v in values.items() if isinstance(v, list) and v}
        if values:
            series[label] = values
    return series


def round_table(series: Mapping[str, Mapping[str, list]]) -> RoundTable:
    """Round, then one column per (figure, method); round 0 is the pre-trained PM."""
    columns = [(label, method) for label, values in series.items() for method in values]
    n = max(len(series[label][method]) for label, method in columns)

    def cell(label: str, method: str, r: int) -> str:
        values = series[label][method]
        return _fmt(FORMATS[label], values[r] if r < len(values) else None)

    rows = tuple(
        (f"{r} (pre-trained)" if r == 0 else str(r), *(cell(label, method, r) for label, method in columns))
        for r in range(n)
    )
    names = tuple(f"{NAMES.get(method, method)} {label}" for label, method in columns)
    return RoundTable(("round", *names), rows)


def _verdict(label: str, values: Mapping[str, list], fmt: str) -> str:
    """``label PCPO x vs DPO y: PCPO wins`` at the last round (one method only: its value)."""
    finals = {method: v[-1] for method, v in values.items()}
    shown = " vs ".join(f"{NAMES.get(k, k)} {_fmt(fmt, v)}" for k, v in finals.items())
    if not all(_number(finals.get(method)) for method in METHODS):
        return f"{label} {shown}"
    return f"{label} {shown}: {_winner(finals['pcpo'], finals['dpo'])}"


def _winner(pcpo: float, dpo: float) -> str:
    """Who is ahead at the precision shown (3 decimals): equal there is a tie, not a win."""
    pcpo, dpo = round(pcpo, 3), round(dpo, 3)
    return "PCPO wins" if pcpo > dpo else "DPO wins" if dpo > pcpo else "a tie"


def _online(m: Mapping[str, Any], _: Headline) -> tuple[Line | None, dict]:
    if not any(k.startswith("online.") for k in m):
        return None, {}
    if "online.skipped" in m:
        return Line("Online A/B", f"skipped: {m['online.skipped']}", True), {}
    pcpo, dpo = m.get("online.ctr_lift_pcpo"), m.get("online.ctr_lift_dpo")
    if not (_number(pcpo) or _number(dpo)):
        return Line("Online A/B", f"skipped: {NO_ONLINE}", True), {}
    text = f"CTR lift over the logged creatives alone: PCPO {_percent(pcpo)}, DPO {_percent(dpo)}"
    if _number(pcpo) and _number(dpo):
        text += f": {_winner(pcpo, dpo)}"
    context = [f"logged-only CTR {_fmt('{:.4f}', m.get('online.ctr_by_arm_set.existing'))}"]
    if _number(m.get("online.impressions")):
        context.append(f"{count(m['online.impressions'])} simulated impressions")
    if _number(m.get("online.products")):
        context.append(f"{count(m['online.products'])} held-out products")
    return Line("Online A/B", f"{text} ({', '.join(context)})"), {
        "online.ctr_lift_pcpo": pcpo,
        "online.ctr_lift_dpo": dpo,
    }


def _priors(m: Mapping[str, Any], _: Headline) -> tuple[Line | None, dict]:
    strength, temperature = m.get("priors.prior_strength"), m.get("priors.prior_temperature")
    if not (_number(strength) or _number(temperature)):
        return None, {}
    text = f"prior strength {_plain(strength)} pseudo-impressions, temperature {_plain(temperature)}"
    if _number(m.get("priors.creatives_scored")):
        scored = count(m["priors.creatives_scored"]), count(m.get("priors.products_scored"))
        text += f"; {scored[0]} creatives of {scored[1]} products scored"
    if m.get("priors.products_not_scored"):
        text += f", {count(m['priors.products_not_scored'])} products not scored"
    return Line("Selector priors", text), {
        "priors.prior_strength": strength,
        "priors.prior_temperature": temperature,
    }


def count(value: Any) -> str:
    """An integer with thousands separators; anything else as it is (``-`` for None)."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return f"{int(value):,}"
    return str(value)


def _percent(value: Any) -> str:
    return f"{value:+.1%}" if _number(value) else "n/a"


def _plain(value: Any) -> str:
    if not _number(value):
        return "n/a"
    return count(value) if float(value).is_integer() else f"{value:.3f}"


def _fmt(fmt: str, value: Any) -> str:
    return fmt.format(value) if _number(value) else "-"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
