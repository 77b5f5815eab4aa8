"""CAIG's Feast repository: entities, offline sources, feature views and versioned feature services.

Declarative only. `caig features apply` writes the offline sources below into the store's `data/` folder
(from the world catalog, the ingested `creative_stats.parquet` and the RM stage's `rm_priors.parquet`),
generates `feature_store.yaml` for the profile (SQLite locally, Redis in production) and applies this file.
Source paths are relative to the store directory; every timestamp is UTC.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float64, Int64, String

# A catalog product: the ad server asks for creatives of one product.
product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING)

# An ad creative (one background for one product); belongs to exactly one product.
creative = Entity(name="creative", join_keys=["creative_id"], value_type=ValueType.STRING)

# Catalog snapshot: one row per product and snapshot time.
product_profile_source = FileSource(
    name="product_profile_source", path="data/product_profile.parquet", timestamp_field="event_timestamp"
)

# The creative ids of each product, as known at each snapshot.
product_creatives_source = FileSource(
    name="product_creatives_source", path="data/product_creatives.parquet", timestamp_field="event_timestamp"
)

# Per creative and day: impressions, clicks and CTR over the last 1, 7 and 28 days, stamped at the day's end.
creative_ctr_stats_source = FileSource(
    name="creative_ctr_stats_source",
    path="data/creative_ctr_stats.parquet",
    timestamp_field="event_timestamp",
)

# The reward model's prior per creative (written by caig.features.priors.write_rm_priors in the RM stage).
rm_prior_source = FileSource(
    name="rm_prior_source", path="data/rm_priors.parquet", timestamp_field="event_timestamp"
)

# What a product is: the attributes the prompt and reward models read.
product_profile = FeatureView(
    name="product_profile",
    entities=[product],
    ttl=timedelta(days=365),
    schema=[
        Field(name="title", dtype=String),
        Field(name="category", dtype=String),
        Field(name="price", dtype=Float64),
        Field(name="colour", dtype=String),
    ],
    source=product_profile_source,
    tags={"team": "caig", "stage": "features"},
)

# Which creatives a product has: the selector's candidate arms.
product_creatives = FeatureView(
    name="product_creatives",
    entities=[product],
    ttl=timedelta(days=365),
    schema=[Field(name="creative_ids", dtype=Array(String)), Field(name="n_creatives", dtype=Int64)],
    source=product_creatives_source,
    tags={"team": "caig", "stage": "features"},
)

# Observed CTR per creative over 1/7/28-day windows; a row is valid for two days (daily refresh).
creative_ctr_stats = FeatureView(
    name="creative_ctr_stats",
    entities=[creative],
    ttl=timedelta(days=2),
    schema=[
        Field(name=f"{kind}_{days}d", dtype=Float64 if kind == "ctr" else Int64)
        for days in (1, 7, 28)
        for kind in ("impressions", "clicks", "ctr")
    ],
    source=creative_ctr_stats_source,
    tags={"team": "caig", "stage": "features"},
)

# The RM's score of a creative and the Beta prior the bandit starts from.
rm_prior = FeatureView(
    name="rm_prior",
    entities=[creative],
    ttl=timedelta(days=365),
    schema=[
        Field(name="rm_score", dtype=Float64),
        Field(name="prior_alpha", dtype=Float64),
        Field(name="prior_beta", dtype=Float64),
    ],
    source=rm_prior_source,
    tags={"team": "caig", "stage": "features"},
)

# Reward-model training: point-in-time product attributes and CTR history per (creative, time).
rm_training_v1 = FeatureService(name="rm_training_v1", features=[product_profile, creative_ctr_stats])

# Creative selector (bandit), online: per candidate creative, its product's arms, CTR stats and RM prior.
selector_online_v1 = FeatureService(
    name="selector_online_v1",
    features=[product_creatives[["creative_ids"]], creative_ctr_stats, rm_prior],
)
