"""The pairwise CTR reward model of paper section 3.3: the paper's RM, and nothing else.

``config`` (the ``reward`` section), ``inputs`` and ``data`` (what the RM reads: prompts, joined images, pair
sources, recipes, collators), ``model`` and ``loss`` (Eq. 3-7), ``trainer`` (the HF Trainer over a list of
stages; the paper's RM is one, the logged pairs), ``io`` (a trained RM on disk), ``scoring`` (both-order
scoring), ``metrics`` (pair accuracy, skill), ``rank`` (Bradley-Terry over candidates), ``evaluate``
(``caig rm eval``) and ``ablation`` (Table 1). The optional curriculum that trains the RM before the logged
pairs lives beside it, in ``caig.reward.curriculum``: it imports these modules, they never import it.
"""
