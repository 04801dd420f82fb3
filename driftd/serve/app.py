"""The FastAPI application of ``driftd serve``.

``POST /predict`` takes ``{"id": ..., "features": {...}}`` and answers ``{"id",
"model_version", "variant", "prediction", "score"}`` once the prediction is logged.
Refusals: 422 for a body that is not the schema's (the detail's ``loc`` names the field),
413 for a body over ``serve.max_body_bytes``, 503 when the log cannot be written, 500
when the model fails; none of them is logged. ``GET /health`` says what serves.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from driftd.serve.log import LogWriteError
from driftd.serve.schema import PredictionOut, request_model
from driftd.serve.scoring import Predictor, ScoringError

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, by their Content-Length or,
    when streamed, as soon as the bytes read pass the limit (ASGI middleware)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await self._refuse(send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")


async def _reply(send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def create_app(
    predictor: Predictor,
    *,
    max_body_bytes: int = 64 << 10,
    reload_interval: timedelta = timedelta(seconds=5),
) -> FastAPI:
    """The service around ``predictor``: loads the models and watches the aliases while it
    runs (lifespan), closes the log when it stops."""
    schema = predictor.schema
    RequestBody = request_model(schema)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predictor.models.start(reload_interval)
        predictor.start()
        try:
            yield
        finally:
            predictor.stop()
            predictor.models.stop()
            predictor.log.close()
            logger.info("stopped serving: %d predictions logged", predictor.log.written)

    app = FastAPI(title="driftd serve", lifespan=lifespan)
    app.state.predictor = predictor

    # no `from __future__ import annotations` here: FastAPI reads this body type at run time
    @app.post("/predict", response_model=PredictionOut, response_model_exclude_none=True)
    def predict(body: RequestBody) -> dict[str, Any]:  # type: ignore[valid-type]
        features = body.features.model_dump()  # type: ignore[attr-defined]
        record = predictor.predict(body.id, features)  # type: ignore[attr-defined]
        return {k: v for k, v in record.items() if k not in ("features", "ts")}

    @app.get("/health")
    def health() -> dict[str, Any]:
        loaded = predictor.models.current
        return {
            "status": "ok",
            "champion": loaded.champion.version,
            "challenger": loaded.challenger.version if loaded.challenger else None,
            "challenger_share": predictor.challenger_share,
            "features": {name: str(kind) for name, kind in schema.items()},
            "logged": predictor.log.written,
        }

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each bad value: not a NaN (no JSON), nor personal data
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(LogWriteError)
    async def unlogged(request: Request, exc: LogWriteError) -> JSONResponse:
        logger.error("refused a prediction: %s", exc)
        return JSONResponse({"detail": "the prediction log cannot be written"}, status_code=503)

    @app.exception_handler(ScoringError)
    async def unscored(request: Request, exc: ScoringError) -> JSONResponse:
        logger.error("refused a prediction: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)  # type: ignore[arg-type]
    return app
