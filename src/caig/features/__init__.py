"""Features stage: the Feast store of a run (offline sources, apply, materialize, online and historical reads).

``feature_repo/`` holds the declarative definitions; this package prepares their sources from a run's data,
generates ``feature_store.yaml`` per profile and wraps the few Feast calls the other stages need.
"""
