"""The simulated e-commerce world: catalog, creatives, click logs and the oracle that knows the truth.

``caig.world.load_world(DIR)`` loads a world built by ``caig world build``; its ``true_ctr`` and
``judge_match`` are the oracle, for evaluation and tests only.
"""

from caig.world.loaded import World, load_world

__all__ = ["World", "load_world"]
