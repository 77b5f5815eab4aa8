"""The RM's curriculum: optional stages that train the RM before the logged pairs (off in the paper).

Beside the paper's RM (``caig.reward``: config, model, loss, data, io, trainer, scoring, metrics, rank,
evaluate, ablation), never under it: this package imports the core, the core never imports it. Its settings
are the profile's ``curriculum`` section (``config``); ``stages.build_stages`` lists the stages a profile turns
on, in front of the logged pairs; ``jobs`` is what ``caig rm train`` and ``caig rm ablation`` (and their
pipeline steps) run. The stages: background perception (``perception``), ad utility (``ad_utility``), the
side warm-up (``side_warmup``) and the description teacher (``teacher``), on the ads of ``ads``; the RMs of one
ablation share the perceived tower and the borrowed renders (``shared``).
"""
