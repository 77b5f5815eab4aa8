"""Deployment: turn a kustomize overlay and a model URI into the exact Kubernetes objects and patches that
roll a model out (``caig deploy``), promote or roll back a canary (``caig promote``), and sync the compiled
pipelines to Kubeflow Pipelines (``caig deploy pipelines``).

Plans are plain data computed offline (``plan.py``) so that ``--dry-run`` prints exactly what would be sent;
only ``cluster.py`` and ``kfp_sync.py`` talk to a cluster, through the kubernetes, KServe and KFP clients,
each imported lazily so that planning needs none of them.
"""
