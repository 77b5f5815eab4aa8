"""Generate: new creatives for the catalog (the caig-generate pipeline), and the simulated online A/B of them."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from caig.orchestration.images import train_image


@dsl.component(base_image=train_image(), install_kfp_package=False)
def generate_creatives(profile: str, data: str, pm: str, optimized: str, rm: str, summary: Output[Metrics]):
    """``caig.generate.run.generate_creatives`` into the data location ``data`` (a mounted volume): the PM
    with the last round's adapter of ``optimized`` (a PCPO run) writes, the RM ranks, the best are
    registered there. Idempotent (ids from the content), so a retried step registers nothing twice.
    ``pm``, ``optimized``, ``rm``: directories, ``pvc://`` URIs of a registered run on the runs volume, or
    empty for the latest registered run (``caig.orchestration.storage.resolve_model``)."""
    from pathlib import Path

    from caig.generate.run import generate_creatives as generate
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter
    from caig.orchestration.storage import resolve_model

    setup_logging()
    config = profile_from_parameter(profile)
    runs = config.orchestration
    result = generate(
        config,
        Path(data),
        resolve_model(pm, "pm", runs, "pm"),
        resolve_model(rm, "rm", runs, "rm"),
        resolve_model(optimized, "pcpo", runs, "optimized"),
    )
    record_metrics(summary, "generate", result)


@dsl.component(base_image=train_image(), install_kfp_package=False)
def online_ab_test(
    profile: str,
    world: Input[Dataset],
    pm: Input[Model],
    rm: Input[Model],
    pcpo: Input[Model],
    dpo: Input[Model],
    online: Output[Dataset],
    summary: Output[Metrics],
):
    """``caig.evaluate.online.run_online_test``: the logged creatives alone, plus PCPO's, plus DPO's, served
    on the same simulated traffic (skipped, with its reason, on real logs)."""
    from pathlib import Path

    from caig.evaluate.online import run_online_test
    from caig.logs import setup_logging
    from caig.orchestration.metrics import record_metrics
    from caig.orchestration.params import profile_from_parameter

    setup_logging()
    runs = {"pcpo": Path(pcpo.path), "dpo": Path(dpo.path)}
    result = run_online_test(
        profile_from_parameter(profile),
        Path(world.path),
        Path(pm.path),
        Path(rm.path),
        runs,
        Path(online.path),
    )
    record_metrics(summary, "online", result)
