"""``caig client``: the ad server's side of the creative selector, over plain HTTP (KServe V1 protocol)."""

from __future__ import annotations

import json
import uuid

import click

from caig.errors import UserError


def _post(url: str, model: str, instance: dict) -> dict:
    import httpx

    endpoint = f"{url.rstrip('/')}/v1/models/{model}:predict"
    try:
        response = httpx.post(endpoint, json={"instances": [instance]}, timeout=10.0)
    except httpx.HTTPError as err:
        raise UserError(
            f"--url {url}: cannot reach the server ({err}); is `caig serve selector` running?"
        ) from None
    if response.status_code >= 400:
        try:
            reason = response.json().get("error", response.text)
        except ValueError:
            reason = response.text
        raise UserError(f"{model} answered {response.status_code}: {reason}")
    return response.json()


@click.group()
def client() -> None:
    """Call a running creative selector (what the ad server does per impression)."""


@client.command("select")
@click.option("--url", required=True, help="Base URL of the server, e.g. http://127.0.0.1:8080.")
@click.option("--product", "product_id", required=True, help="Product id, e.g. P00003.")
@click.option("--segment", required=True, help="Audience segment, e.g. young.")
def select(url: str, product_id: str, segment: str) -> None:
    """Ask which creative to show; print {creative_id, propensity, policy} as JSON."""
    answer = _post(url, "creative-selector", {"product_id": product_id, "segment": segment})
    click.echo(json.dumps(answer["predictions"][0]))


@client.command("feedback")
@click.option("--url", required=True, help="Base URL of the server, e.g. http://127.0.0.1:8080.")
@click.option("--event-id", default=None, help="Unique id of the impression; default a new UUID.")
@click.option("--product", "product_id", required=True, help="Product id.")
@click.option("--segment", required=True, help="Audience segment.")
@click.option("--creative", "creative_id", required=True, help="The creative that was shown.")
@click.option("--clicked/--not-clicked", required=True, help="Whether the impression was clicked.")
@click.option(
    "--propensity",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="The propensity the selection answered (kept for off-policy evaluation).",
)
def feedback(
    url: str,
    event_id: str | None,
    product_id: str,
    segment: str,
    creative_id: str,
    clicked: bool,
    propensity: float | None,
) -> None:
    """Report one impression; print recorded or duplicate (an event id counts once, ever)."""
    event = {
        "event_id": event_id or str(uuid.uuid4()),
        "product_id": product_id,
        "segment": segment,
        "creative_id": creative_id,
        "clicked": clicked,
    }
    if propensity is not None:
        event["propensity"] = propensity
    answer = _post(url, "creative-feedback", event)
    click.echo(json.dumps({"event_id": event["event_id"], "status": answer["predictions"][0]}))
