"""The simulated e-commerce world: catalog, creatives, click logs and the oracle that knows the truth.

``caig.world.loaded.load_world(DIR)`` loads a world built by ``caig world build``; its ``true_ctr`` and
``judge_match`` are the oracle, for evaluation and tests only. The package itself imports nothing, so that
a stage using the world's vocabulary or config never loads the oracle (``caig.world.oracle``) with it.
"""
