"""KFP pipelines: ``caig-training`` and ``caig-refresh``, built from the components in ``components/``.

Each pipeline is made by a factory that takes the profile's ``OrchestrationConfig`` (node pools, GPUs,
volumes, secrets, retries); the profile itself is the pipeline's ``profile`` parameter, whose default is
set when compiling. ``compile.py`` writes ``compiled/``, ``local.py`` runs a pipeline with the KFP local
runner, ``submit.py`` starts a run on a Kubeflow Pipelines server.
"""
