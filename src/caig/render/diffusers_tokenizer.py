"""A small CLIP tokenizer built offline, for the tiny test pipeline and random-weight benchmarks.

Byte-level BPE like CLIP's: every byte alone and at a word's end (``x</w>``), so any text encodes, plus
merges learned from a word list (the world's vocabulary by default) so its descriptions take few tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_EOW = "</w>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def learn_merges(words: Iterable[str], n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent symbol pair of the words."""
    byte_chars = bytes_to_unicode()
    corpus = Counter()
    for word in (w for text in words for w in text.lower().split()):
        symbols = [byte_chars[b] for b in word.encode()]
        symbols[-1] += _EOW
        corpus[tuple(symbols)] += 1
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for symbols, count in corpus.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        corpus = Counter({_merge(symbols, best): count for symbols, count in corpus.items()})
    return merges


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def default_words() -> list[str]:
    """Connective words, plus the world's background terms and category names when importable."""
    from caig.render.config import DEFAULT_NEGATIVE_PROMPT

    words = ["a an the in on with of and at by for palette style product photo"] * 4 + [
        DEFAULT_NEGATIVE_PROMPT
    ] * 2
    try:
        from caig.world.vocabulary import CATEGORIES, TERMS
    except ImportError:
        return words
    return words + [t.text for t in TERMS] + [c.name for c in CATEGORIES]


def build_tokenizer(words: Iterable[str] | None = None, n_merges: int = 400, max_length: int = 77):
    """A ``CLIPTokenizer`` with byte-level symbols plus ``n_merges`` merges learned from ``words``."""
    from transformers import CLIPTokenizer

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + _EOW for c in chars])}
    merges = learn_merges(default_words() if words is None else words, n_merges)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
