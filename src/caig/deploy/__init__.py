"""Deployment: turn a kustomize overlay and a model URI into the exact Kubernetes objects and patches that
roll a model out (``caig deploy``), promote or roll back a canary (``caig promote``), sync the compiled
pipelines to Kubeflow Pipelines (``caig deploy pipelines``), and build, push and pin the images
(``caig release``).

Plans are plain data computed offline (``plan.py``, ``knative.py``: the Knative feature flags the
InferenceServices need) so that ``--dry-run`` prints exactly what would be sent; only ``cluster.py`` and
``kfp_sync.py`` talk to a cluster, through the kubernetes, KServe and KFP clients, each imported lazily so that
planning needs none of them; ``release.py`` runs the container tool (docker, podman or buildah).
"""
