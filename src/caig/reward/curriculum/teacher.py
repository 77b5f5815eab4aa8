"""A description teacher: what the click logs say about background WORDS, handed to the image RM as soft labels.

Generated ads come with the background description they were painted from (``creatives.parquet``'s
``description``). A logistic regression on those words, with product-category x word and product-colour x
word interactions, learns from the logged pairs which backgrounds win for which product; it never sees the
world's oracle. Its probabilities on EVERY pair of a product's creatives (not just the pairs with enough
impressions to pass the pair rule) are clean, dense targets for the image RM, which learns to read the same
preferences from pixels (distillation). The RM still scores images only: the teacher is a training aid,
switched by ``curriculum.teacher.enabled`` and useless on creatives without descriptions.

``teacher.target`` chooses what it fits: ``pairs`` (the pairs' labels, one bit each) or ``ctr`` (every paired
creative's logged clicks and impressions: a ridge regression of its log-odds CTR minus its product's mean,
weighted by the inverse variance of that log-odds, then one scale fitted to the pairs' labels so that its
probabilities stay calibrated). Both see only the logs and the descriptions.

With ``teacher.borrowed_per_product`` > 0, each product also gets backgrounds borrowed from other products'
creatives, rendered around it (``caig.reward.curriculum.ads.render_borrowed``) and labelled by the teacher:
more distinct images per product, so the RM learns what a background does for a product instead of memorising
a few ads.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, Ridge

from caig.errors import UserError
from caig.reward.curriculum.config import TeacherConfig

log = logging.getLogger("caig.reward")


@dataclass
class DescriptionTeacher:
    """Fitted words -> pairwise preference model (see the module docstring)."""

    vectorizer: CountVectorizer
    categories: list[str]
    colours: list[str]
    coef: np.ndarray  # one weight per feature: P(a beats b) = logistic((features(a) - features(b)) @ coef)

    def features(self, descriptions: pd.Series, catalog_rows: pd.DataFrame) -> sp.csr_matrix:
        """Per creative: its words, and its words within its product's category and colour."""
        return _features(self.vectorizer.transform(descriptions), catalog_rows, self.categories, self.colours)

    def prob_left(self, left: sp.csr_matrix, right: sp.csr_matrix) -> np.ndarray:
        """P(left ad gets more clicks) for aligned rows of left and right creative features."""
        return expit(np.asarray((left - right) @ self.coef).ravel())

    def utility(self, descriptions: pd.Series, catalog_rows: pd.DataFrame) -> np.ndarray:
        """Each ad's score for its product: P(a beats b) is the logistic of utility(a) - utility(b)."""
        return self.utility_of_words(self.vectorizer.transform(descriptions), catalog_rows)

    def standardised_utility(self, creatives: pd.DataFrame) -> pd.Series:
        """``utility`` of each of ``creatives`` (descriptions, categories, colours), scaled to mean 0 and
        standard deviation 1 over them: the RM's regression target (its CTR head)."""
        utility = self.utility(creatives["description"], creatives)
        return pd.Series((utility - utility.mean()) / (utility.std() or 1.0), index=creatives.index)

    def utility_of_words(self, words: Any, catalog_rows: pd.DataFrame) -> np.ndarray:
        """``utility`` of words already read (one 0/1 column per ``vectorizer`` word), e.g. from pixels."""
        features = _features(sp.csr_matrix(words), catalog_rows, self.categories, self.colours)
        return np.asarray(features @ self.coef).ravel()

    def utility_parts(self, descriptions: pd.Series, catalog_rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """``utility`` split into what the words are worth alone, within the product's category and within
        its colour (the three add up to it): how much of the ranking an RM must compose from the product."""
        features = self.features(descriptions, catalog_rows)
        n_words, n_categories = len(self.vectorizer.vocabulary_), len(self.categories)
        edges = {"words": (0, n_words), "category x words": (n_words, n_words * (1 + n_categories))}
        edges["colour x words"] = (n_words * (1 + n_categories), features.shape[1])
        return {
            name: np.asarray(features[:, lo:hi] @ self.coef[lo:hi]).ravel()
            for name, (lo, hi) in edges.items()
        }

    def compare(self, product: Mapping[str, Any], a: Any, b: Any) -> float:
        """P(ad a gets more clicks than ad b) from their ``description``s: PCPO's judge read from the text
        (``caig.pcpo.rollout.PairJudge``), a diagnostic beside the paper's RM, which reads the images."""
        rows = pd.DataFrame({"category": [product["category"]] * 2, "colour": [product["colour"]] * 2})
        x = self.features(pd.Series([a.description, b.description]), rows)
        return float(self.prob_left(x[0], x[1])[0])


def _features(words: sp.csr_matrix, catalog_rows: pd.DataFrame, categories: list[str], colours: list[str]):
    blocks = [words]
    for column, values in (("category", categories), ("colour", colours)):
        codes = pd.Categorical(catalog_rows[column], categories=values).codes
        for i in range(len(values)):
            blocks.append(words.multiply((codes == i)[:, None]).tocsr())
    return sp.hstack(blocks, format="csr")


def fit_teacher(pairs: pd.DataFrame, creatives: pd.DataFrame, config: TeacherConfig) -> DescriptionTeacher:
    """Fit the teacher on logged pairs (``label`` left/right; ``left_ctr`` / ``left_impressions`` and the
    right side's for ``target`` ctr) of creatives with descriptions and products."""
    vectorizer = CountVectorizer(ngram_range=(1, config.max_ngram), binary=True, min_df=config.min_df)
    vectorizer.fit(creatives["description"])
    categories, colours = sorted(creatives["category"].unique()), sorted(creatives["colour"].unique())
    teacher = DescriptionTeacher(vectorizer, categories, colours, np.zeros(0))
    x = teacher.features(creatives["description"], creatives)
    index = pd.Index(creatives.index)
    missing = ~pairs["left_creative_id"].isin(index) | ~pairs["right_creative_id"].isin(index)
    if missing.any():
        raise UserError(
            f"{int(missing.sum())} training pairs name creatives without a description in creatives.parquet "
            "(the teacher reads their words): import the creatives' descriptions or set curriculum.teacher.enabled=false"
        )
    left, right = (
        x[index.get_indexer(pairs["left_creative_id"])],
        x[index.get_indexer(pairs["right_creative_id"])],
    )
    y = (pairs["label"] == "left").to_numpy()
    if config.target == "ctr":
        direction = ctr_coefficients(pairs, x, index, creatives["product_id"], config.ridge_alpha)
        margin = sp.csr_matrix((left - right) @ direction[:, None])  # one feature: the scale calibrates
        teacher.coef = direction * _pair_logistic(margin, y, c=1e6)[0]
    else:
        teacher.coef = _pair_logistic(left - right, y, config.regularization_c)
    log.info("description teacher (%s): %d pairs, %d features", config.target, len(pairs), x.shape[1])
    return teacher


def _pair_logistic(difference: sp.csr_matrix, left_won: np.ndarray, c: float) -> np.ndarray:
    """Weights of a logistic regression without intercept on both orders of each pair: the fitted preference
    is antisymmetric and the classes are balanced."""
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
    model.fit(sp.vstack([difference, -difference]), np.concatenate([left_won, ~left_won]).astype(int))
    return model.coef_.ravel()


def ctr_coefficients(
    pairs: pd.DataFrame, x: sp.csr_matrix, index: pd.Index, product_ids: pd.Series, alpha: float
) -> np.ndarray:
    """Word weights from every paired creative's logged CTR: a ridge regression of its log-odds minus its
    product's (weighted) mean, weighted by ``impressions * p * (1 - p)`` (the inverse variance of the log-odds),
    so that the product's own click rate drops out and well-measured creatives count more."""
    absent = [c for c in ("left_impressions", "right_impressions") if c not in pairs.columns]
    if absent:
        raise UserError(
            f"curriculum.teacher.target=ctr needs the pairs' impressions ({', '.join(absent)} missing; "
            "`caig data pairs` writes them): rebuild the pairs or set curriculum.teacher.target=pairs"
        )
    sides = [
        pairs[[f"{side}_creative_id", f"{side}_ctr", f"{side}_impressions"]].set_axis(
            ["creative_id", "ctr", "impressions"], axis=1
        )
        for side in ("left", "right")
    ]
    totals = pd.concat(sides).drop_duplicates("creative_id")
    impressions = totals["impressions"].to_numpy(dtype=np.float64)
    p = (totals["ctr"].to_numpy() * impressions + 0.5) / (impressions + 1.0)  # smoothed: no 0 or 1
    weight = impressions * p * (1 - p)
    log_odds = np.log(p / (1 - p))
    rows = index.get_indexer(totals["creative_id"])
    group = pd.factorize(product_ids.to_numpy()[rows])[0]
    by_group = sp.csr_matrix((weight, (group, np.arange(len(group)))))  # groups x creatives, weighted
    group_weight = np.asarray(by_group.sum(axis=1)).ravel()
    paired = x[rows]
    features = paired.astype(np.float32).toarray()
    features -= (sp.diags(1 / group_weight) @ (by_group @ paired)).toarray().astype(np.float32)[group]
    target = log_odds - (by_group @ log_odds / group_weight)[group]
    model = Ridge(alpha=alpha, fit_intercept=False).fit(features, target, sample_weight=weight)
    return model.coef_.astype(np.float64).ravel()


def teacher_pairs(
    teacher: DescriptionTeacher,
    creatives: pd.DataFrame,
    totals: pd.DataFrame | None = None,
    seed: int = 0,
    pairs_per_product: int = 0,
) -> pd.DataFrame:
    """Pairs of each product's creatives with the teacher's ``p_right``, sides in random order: every pair,
    or ``pairs_per_product`` drawn at random (0: all).

    ``left_ctr`` / ``right_ctr`` are the logged CTRs from ``totals`` (creative_id, impressions, clicks) where
    given, else 0 (then train with ``point_weight`` 0); ``label`` is the teacher's more likely side.
    """
    rng = np.random.default_rng(seed)
    x = teacher.features(creatives["description"], creatives)
    position = {cid: i for i, cid in enumerate(creatives.index)}
    rows = []
    for product_id, group in creatives.groupby("product_id", sort=True):
        combos = list(itertools.combinations(group.index, 2))
        if 0 < pairs_per_product < len(combos):
            combos = [combos[i] for i in rng.choice(len(combos), size=pairs_per_product, replace=False)]
        for a, b in combos:
            rows.append((product_id, *((b, a) if rng.random() < 0.5 else (a, b))))
    pairs = pd.DataFrame(rows, columns=["product_id", "left_creative_id", "right_creative_id"])
    if pairs.empty:
        raise UserError("no product has two creatives: the teacher has no pairs to label")
    left = x[[position[c] for c in pairs["left_creative_id"]]]
    right = x[[position[c] for c in pairs["right_creative_id"]]]
    pairs["p_right"] = 1.0 - teacher.prob_left(left, right)
    pairs["label"] = np.where(pairs["p_right"] > 0.5, "right", "left")
    ctr = pd.Series(0.0, index=creatives.index)
    if totals is not None:
        logged = totals.set_index("creative_id")
        ctr.update(logged["clicks"] / logged["impressions"].clip(lower=1))
    pairs["left_ctr"] = ctr.loc[pairs["left_creative_id"]].to_numpy()
    pairs["right_ctr"] = ctr.loc[pairs["right_creative_id"]].to_numpy()
    return pairs
