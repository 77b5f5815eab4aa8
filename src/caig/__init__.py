"""caig: CTR-driven advertising image generation (CAIG) as a Kubeflow / KServe / Feast platform.

The library is the house: every stage (world, data, features, mllm, reward, pcpo, render, bandit,
evaluate, serving) is plain Python under this package. KFP components, pipelines, KServe servers and the
CLI are thin doors into it.
"""

__version__ = "0.1.0"
