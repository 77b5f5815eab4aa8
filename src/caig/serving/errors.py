"""What every caig server answers when a request goes wrong: the status says whose fault, the body is short.

- a bad request (kserve's ``InvalidInput``, a body FastAPI cannot validate, JSON with ``NaN``): 400, the
  message cut to a few hundred characters with the caller's values quoted ASCII-safe, one WARNING line and no
  traceback;
- a model this server does not serve: 404, one WARNING line;
- a body over ``max_body_bytes``: 413, read no further;
- the model repository's load/unload endpoints: 403 (a caller must not unload a serving model);
- the selector's state store down or hung (``StoreUnavailable``, or kserve's ``ModelNotReady`` from the
  readiness check it makes before each request): 503 with ``Retry-After``, no address or internal detail;
- anything else is a bug of ours: 500 with a generic message, and the traceback in the log.

Installed on kserve's FastAPI app by ``caig.serving.server``; pure ASGI and Starlette, no kserve internals.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from caig.bandit.types import StoreUnavailable

log = logging.getLogger("caig.serving")

MAX_MESSAGE = 300  # characters of an error message in a response or a log line
REPOSITORY_PATH = re.compile(r"^/v2/repository(/|$)|^/v1/models/[^/]+:(load|unload)$")


def safe_message(text: str) -> str:
    """A message a JSON response can carry: no lone surrogates, at most ``MAX_MESSAGE`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_MESSAGE else f"{text[:MAX_MESSAGE]}... (cut)"


def _answer(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    message = safe_message(message)
    log.warning("%d %s %s: %s", status, request.method, safe_message(request.url.path), message)
    return JSONResponse(status_code=status, content={"error": message}, headers=headers)


async def bad_request(request: Request, exc: Exception) -> JSONResponse:
    """Invalid input: 400 and one WARNING line."""
    return _answer(request, 400, str(exc))


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    """A model this server does not serve: 404 and one WARNING line."""
    return _answer(request, 404, str(exc))


async def bad_body(request: Request, exc: Any) -> JSONResponse:
    """A body FastAPI could not parse or validate: 400 naming where, never echoing the raw input (which may
    hold values JSON cannot carry, such as NaN)."""
    errors = getattr(exc, "errors", lambda: [])()
    where = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:3]
    )
    return _answer(request, 400, f"invalid request body ({where or 'not valid JSON'})")


def unavailable_handler(retry_after_s: int):
    """The 503 answer while the selector's state store is unreachable (``StoreUnavailable`` in a request, or
    kserve's ``ModelNotReady`` from the readiness check it makes first): the client should retry shortly."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        message = str(exc) if isinstance(exc, StoreUnavailable) else f"{exc}; retry shortly"
        return _answer(request, 503, message, {"Retry-After": str(retry_after_s)})

    return unavailable


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug of ours: the traceback goes to the log, the caller gets no internal detail."""
    log.error("500 %s %s", request.method, safe_message(request.url.path), exc_info=exc)
    return JSONResponse(status_code=500, content={"error": "internal error; see the server log"})


class GuardMiddleware:
    """Pure ASGI: refuses the model repository endpoints (403) and bodies over ``max_body_bytes`` (413),
    from the Content-Length header when there is one and by counting the stream otherwise."""

    def __init__(self, app: Any, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if REPOSITORY_PATH.match(scope.get("path", "")):
            await _send(send, 403, "the model repository endpoints are disabled on caig servers")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send(send, 413, f"request body over {self.max_body_bytes} bytes (serving.max_body_bytes)")
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Any) -> Any:
        seen = 0
        limit = self.max_body_bytes

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted


class BodyTooLarge(Exception):
    """A streamed body passed the limit (no Content-Length to refuse it up front)."""

    def __init__(self, limit: int):
        super().__init__(f"request body over {limit} bytes (serving.max_body_bytes)")


async def body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
    return _answer(request, 413, str(exc))


async def _send(send: Any, status: int, message: str) -> None:
    body = JSONResponse(status_code=status, content={"error": message}).body
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def handle(app: Any, retry_after_s: int = 1) -> None:
    """Our exception handlers on a FastAPI ``app``, after kserve's (the later one wins per class)."""
    from fastapi.exceptions import RequestValidationError
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady

    app.add_exception_handler(InvalidInput, bad_request)
    app.add_exception_handler(ModelNotFound, not_found)
    app.add_exception_handler(RequestValidationError, bad_body)
    app.add_exception_handler(StoreUnavailable, unavailable_handler(retry_after_s))
    app.add_exception_handler(ModelNotReady, unavailable_handler(retry_after_s))
    app.add_exception_handler(BodyTooLarge, body_too_large)
    app.add_exception_handler(Exception, internal_error)


def guard(app: Any, max_body_bytes: int) -> None:
    """The repository and body-size guard as the app's outermost middleware."""
    app.add_middleware(GuardMiddleware, max_body_bytes=max_body_bytes)
