"""Start a pipeline run on a Kubeflow Pipelines server (``caig submit --host URL``)."""

from __future__ import annotations

import logging
import warnings

import urllib3
from kfp import Client
from kfp_server_api.exceptions import ApiException

from caig.errors import UserError
from caig.orchestration.data_source import check_world_allowed
from caig.profile import Profile
from pipelines.compile import default_parameters, pipeline_for

log = logging.getLogger("caig.pipelines")


def submit(
    profile: Profile,
    host: str,
    name: str,
    seed: int = 0,
    arguments: dict | None = None,
    experiment: str = "caig",
    run_name: str | None = None,
    namespace: str | None = None,
) -> str:
    """Compile pipeline ``name`` for ``profile``, start a run on ``host`` and return the run's URL.

    ``arguments`` override the pipeline's default parameters (``rm`` is required by ``caig-refresh``).
    """
    host = host.rstrip("/")
    if name == "caig-training" and not profile.orchestration.runs_pvc:
        raise UserError(  # its register step would refuse only after the training (caig.orchestration.register)
            "caig-training on a cluster needs orchestration.runs_pvc: its register step publishes the trained "
            "run there, in the layout the servers read; set it to the ReadWriteMany PVC the InferenceServices "
            "load from (production: caig-runs)"
        )
    pipeline = pipeline_for(name, profile.orchestration)
    inputs = pipeline.component_spec.inputs or {}
    seeded = {"seed": seed} if "seed" in inputs else {}
    arguments = {**default_parameters(name, profile), **seeded, **(arguments or {})}
    unknown = sorted(set(arguments) - set(inputs))
    if unknown:
        raise UserError(f"{name} has no parameter '{unknown[0]}'; it takes {', '.join(sorted(inputs))}")
    if "data" in inputs and not arguments.get("data"):
        check_world_allowed(profile)  # production never builds a world: refuse before contacting KFP
    try:
        with warnings.catch_warnings():  # "only works with KFP >= 2.0.0-beta.2": we target 2.x servers
            warnings.filterwarnings("ignore", category=FutureWarning)
            client = Client(host=host, namespace=namespace) if namespace else Client(host=host)
        result = client.create_run_from_pipeline_func(
            pipeline, arguments=arguments, run_name=run_name, experiment_name=experiment
        )
    except urllib3.exceptions.HTTPError as err:
        raise UserError(
            f"cannot reach Kubeflow Pipelines at {host} ({type(err).__name__}); "
            "check --host, e.g. http://localhost:8080 after kubectl port-forward"
        ) from None
    except ApiException as err:
        raise UserError(f"Kubeflow Pipelines at {host} refused the run: {err.status} {err.reason}") from None
    url = f"{host}/#/runs/details/{result.run_id}"
    log.info("started %s run %s in experiment %s", name, result.run_id, experiment)
    return url
