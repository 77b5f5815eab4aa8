"""Credentials for the Kubernetes API: the pod's service account, a mounted service-account token, or the
kubeconfig. Apart from ``caig.deploy.cluster`` so that pipeline steps which only talk to the API (the
TrainJob launcher) need the ``kubernetes`` client alone, not KServe's."""

from __future__ import annotations

import os
from pathlib import Path

from caig.errors import UserError


def load_kube_config(
    kubeconfig: str | None = None, context: str | None = None, token_dir: str | None = None
) -> None:
    """In a pod: its service account, or the one whose token is mounted at ``token_dir`` (``token``,
    ``ca.crt``: a service-account token Secret); elsewhere: the kubeconfig ($KUBECONFIG or ~/.kube/config)."""
    from kubernetes import config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    try:
        if token_dir:
            InClusterConfigLoader(
                token_filename=str(Path(token_dir) / "token"), cert_filename=str(Path(token_dir) / "ca.crt")
            ).load_and_set()
        elif kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            # read $KUBECONFIG now: the kubernetes package reads it once, when it is first imported
            config.load_kube_config(config_file=kubeconfig_path(kubeconfig), context=context)
    except (config.ConfigException, OSError) as err:
        where = f"the token mounted at {token_dir}" if token_dir else "KUBECONFIG or --kubeconfig"
        raise UserError(f"no usable Kubernetes credentials ({err}); check {where}") from None


def kubeconfig_path(kubeconfig: str | None) -> str | None:
    """``--kubeconfig``, else $KUBECONFIG, else None (the client's default)."""
    return kubeconfig or os.environ.get("KUBECONFIG") or None
