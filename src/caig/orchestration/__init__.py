"""Orchestration: the library side of the KFP pipelines (no ``kfp`` import here).

What the components and pipelines in ``components/`` and ``pipelines/`` need that is plain Python: the
container image names, the compile-time Kubernetes settings (``config.py``) and the checks of step sizes
(``resources.py``), turning a KFP parameter back into a ``Profile`` and fixing a run's "now" (``params.py``),
the runs volume where trained runs are published and found again (``storage.py``), stage metrics
(``metrics.py``), the run report (``report.py``) and the layout of a local run directory (``rundir.py``).
"""
