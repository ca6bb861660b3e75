"""Routes: the page, the JSON API, the WebSocket of frames; Host and Origin checks; every
error a 4xx with ``{"error": "..."}``.

The page is one client of the API; a notebook or a test can be another (docs/playground.md
lists every route). The training thread starts and stops with the app's lifespan, never at
import. Frames are pulled: the page asks for the next frame when it has drawn the last one,
and gets the newest state then — nothing is queued for a slow page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from deltaprop.errors import DeltapropError
from deltaprop.playground import backprop, compare, export, features, frames, settings
from deltaprop.playground import data as plane
from deltaprop.playground.session import Session

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 100_000  # a JSON request body larger than this is refused (413)
IDLE_SECONDS = 1.0  # a frame request waits this long for a change, then gets "idle"
MIN_FRAME_SECONDS = 1 / 30  # at most 30 frames a second per page: each costs training time
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class BadRequest(Exception):
    """A request to answer with ``status`` and a one-line JSON error."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class Guard:
    """Refuses a foreign Host (DNS rebinding) and a foreign Origin on POST and WebSocket.

    ``hosts`` are the host names the server answers to (None: any, for ``--host 0.0.0.0``).
    A request without an Origin header is not from a web page (browsers send one with
    every POST and WebSocket) and passes.
    """

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.hosts = hosts

    def problem(self, scope: Scope) -> str | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        if self.hosts is not None and name not in self.hosts:
            return f"host {host!r} is not served here; use http://127.0.0.1"
        origin = headers.get("origin")
        writes = scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD")
        if writes and origin is not None and origin != f"http://{host}":
            return f"cross-origin request from {origin!r} refused"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            problem = self.problem(scope)
            if problem is not None:
                if scope["type"] == "http":
                    await error(problem, 403)(scope, receive, send)
                else:
                    await WebSocket(scope, receive, send).close(code=1008, reason=problem)
                return
        await self.app(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BadRequest(f"request body of {length} bytes is over the limit of {limit}", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"request body is over the limit of {limit} bytes", 413)
    return bytes(body)


async def read_json(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/json":
        raise BadRequest(f"expected Content-Type application/json; got {kind or 'none'!r}", 415)
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON: {e}") from None


def read_object(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"expected a JSON object; got {type(value).__name__}")
    unknown = set(value) - set(keys)
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]!r}; fields are {', '.join(keys)}")
    return value


def read_inspect(request: Request) -> tuple[tuple[str, int], list[int]]:
    """``sample=I`` or ``batch=current``, and an optional ``focus=l,k[,j]``, from the query."""
    query = request.query_params
    unknown = set(query) - {"sample", "batch", "focus"}
    if unknown:
        raise BadRequest(f"unknown parameter {sorted(unknown)[0]!r}; parameters are sample, "
                         "batch and focus")
    if ("sample" in query) == ("batch" in query):
        raise BadRequest("give one of sample=I (a training sample) or batch=current")
    if "batch" in query:
        if query["batch"] != "current":
            raise BadRequest(f"batch must be 'current'; got {query['batch']!r}")
        inspect = ("batch", 0)
    else:
        text = query["sample"]
        if not text.isdigit():
            raise BadRequest(f"sample must be a training sample's index 0, 1, …; got {text!r}")
        inspect = ("sample", int(text))
    focus = []
    if query.get("focus"):
        try:
            focus = [int(part) for part in query["focus"].split(",")]
        except ValueError:
            raise BadRequest(f"focus must be l,k or l,k,j; got {query['focus']!r}") from None
        settings.check("focus", focus)
    return inspect, focus


Handler = Callable[[Request], Awaitable[Response]]


def api(handler: Handler) -> Handler:
    """Turns BadRequest and the library's errors (DeltapropError) into 4xx JSON errors.

    Anything else is a bug: Starlette answers it with a 500 and the server keeps running.
    """

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as e:
            return error(str(e), e.status)
        except DeltapropError as e:
            return error(str(e).splitlines()[0] if str(e) else type(e).__name__, 400)

    return wrapped


def create_app(session: Session | None = None, *, hosts: tuple[str, ...] | None = LOOPBACK,
               start: bool = True) -> ASGIApp:
    """The playground's ASGI app around ``session`` (a default one if None).

    ``hosts``: the host names it answers to (None: any). ``start``: run the training
    thread during the app's lifespan.
    """
    session = session if session is not None else Session()
    session.frame_builder = frames.Builder()
    previews: dict[str, Any] = {}

    async def state_response() -> JSONResponse:
        snap = await run_in_threadpool(session.snapshot)
        return JSONResponse(await run_in_threadpool(snap.describe))

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    @api
    async def get_settings(request: Request) -> Response:
        return JSONResponse({
            "settings": settings.schema(),
            "datasets": {"classification": settings.CLASSIFICATION,
                         "regression": settings.REGRESSION},
            "features": {name: label for name, (label, _) in features.FEATURES.items()},
            "limits": {"upload_bytes": plane.MAX_UPLOAD_BYTES,
                       "upload_rows": plane.MAX_UPLOAD_ROWS, "added_points": plane.MAX_ADDED},
        })

    @api
    async def get_datasets(request: Request) -> Response:
        if not previews:
            for name in (*settings.CLASSIFICATION, *settings.REGRESSION):
                previews[name] = await run_in_threadpool(plane.preview, name)
        return JSONResponse(list(previews.values()))

    @api
    async def get_state(request: Request) -> Response:
        return await state_response()

    @api
    async def post_config(request: Request) -> Response:
        await run_in_threadpool(session.configure, await read_json(request))
        return await state_response()

    @api
    async def post_control(request: Request) -> Response:
        body = read_object(await read_json(request), ("action", "steps"))
        await run_in_threadpool(session.control, body.get("action"), body.get("steps", 1))
        return await state_response()

    @api
    async def post_param(request: Request) -> Response:
        body = read_object(await read_json(request), ("layer", "name", "index", "value"))
        await run_in_threadpool(session.edit, body.get("layer"), body.get("name"),
                                body.get("index"), body.get("value"))
        return await state_response()

    @api
    async def post_predict(request: Request) -> Response:
        body = read_object(await read_json(request), ("points",))
        return JSONResponse(await run_in_threadpool(session.predict, body.get("points")))

    @api
    async def get_backprop(request: Request) -> Response:
        inspect, focus = read_inspect(request)
        snap = await run_in_threadpool(session.snapshot, inspect)
        return JSONResponse(await run_in_threadpool(backprop.view, snap, focus))

    @api
    async def get_gradcheck(request: Request) -> Response:
        inspect, focus = read_inspect(request)
        snap = await run_in_threadpool(session.snapshot, inspect)
        return JSONResponse(await run_in_threadpool(backprop.check, snap, focus))

    @api
    async def post_compare(request: Request) -> Response:
        body = read_object(await read_json(request), ("steps",))
        steps = compare.check_steps(body.get("steps", compare.STEPS))
        snap = await run_in_threadpool(session.snapshot)
        return JSONResponse(await run_in_threadpool(compare.run, snap, steps))

    @api
    async def get_data(request: Request) -> Response:
        snap = await run_in_threadpool(session.snapshot)
        d = snap.data
        return JSONResponse({"data_version": snap.data_version, "name": d.name,
                             "task": d.task, "classes": d.classes, "domain": list(d.domain),
                             "added": d.added, "train": d.points("train"),
                             "test": d.points("test")})

    @api
    async def post_points(request: Request) -> Response:
        body = read_object(await read_json(request), ("points",))
        await run_in_threadpool(session.add_points, body.get("points"))
        return await state_response()

    @api
    async def post_csv(request: Request) -> Response:
        content = await read_body(request, plane.MAX_UPLOAD_BYTES)
        await run_in_threadpool(session.upload_csv, content)
        return await state_response()

    @api
    async def get_export(request: Request) -> Response:
        what = request.path_params["what"]
        snap = await run_in_threadpool(session.snapshot)
        if what == "model.safetensors":
            body = await run_in_threadpool(export.model_bytes, snap)
            return Response(body, media_type="application/octet-stream", headers={
                "Content-Disposition": 'attachment; filename="playground.safetensors"'})
        if what == "snippet.py":
            return PlainTextResponse(export.snippet(snap))
        if what == "data.csv":
            return PlainTextResponse(export.data_csv(snap), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{export.DATA_FILE}"'})
        raise BadRequest(f"unknown export {what!r}; use model.safetensors, snippet.py or "
                         "data.csv", 404)

    async def frames_socket(ws: WebSocket) -> None:
        await ws.accept()
        seen, sent = -1, 0.0
        wait = 0.0  # how long the last frame took to come after it was asked for
        loop = asyncio.get_running_loop()
        try:
            while True:
                await ws.receive_text()  # the page asks for the next frame
                # Asked for that much before it may go, the frame is ready on time: waiting
                # the whole MIN_FRAME_SECONDS first, then for the frame (the training thread
                # builds it between steps), made 20 frames a second of the 30 allowed.
                await asyncio.sleep(max(0.0, sent + MIN_FRAME_SECONDS - wait - loop.time()))
                asked = loop.time()
                newest = await run_in_threadpool(session.next_frame, seen, IDLE_SECONDS)
                if newest is None:
                    await ws.send_text("idle")
                    continue
                wait = min(loop.time() - asked, MIN_FRAME_SECONDS)
                await asyncio.sleep(max(0.0, sent + MIN_FRAME_SECONDS - loop.time()))  # the cap
                seen, frame = newest
                sent = loop.time()
                await ws.send_bytes(frame)
        except WebSocketDisconnect:
            return

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return error(f"{request.method} {request.url.path}: {detail}", status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The playground's matrices are tiny: one BLAS thread is fastest (training.py's
        # ONE_BLAS_THREAD_BELOW) and leaves the other core to the page and the frames.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            if start:
                session.start()
            try:
                yield
            finally:
                session.stop()

    routes = [
        Route("/", page),
        Route("/api/settings", get_settings),
        Route("/api/datasets", get_datasets),
        Route("/api/state", get_state),
        Route("/api/config", post_config, methods=["POST"]),
        Route("/api/control", post_control, methods=["POST"]),
        Route("/api/param", post_param, methods=["POST"]),
        Route("/api/predict", post_predict, methods=["POST"]),
        Route("/api/backprop", get_backprop),
        Route("/api/gradcheck", get_gradcheck),
        Route("/api/compare", post_compare, methods=["POST"]),
        Route("/api/data", get_data),
        Route("/api/data/points", post_points, methods=["POST"]),
        Route("/api/data/csv", post_csv, methods=["POST"]),
        Route("/api/export/{what}", get_export),
        WebSocketRoute("/ws", frames_socket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: not_found})
    app.state.session = session
    return Guard(app, hosts)
