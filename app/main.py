"""The Litestar app factory: one runtime per process, the native API, dialects and operator routes."""

from __future__ import annotations

import gc
import logging
from typing import Any

from litestar import Litestar, Request, Response

from actors.runtime import Runtime
from actors.settings import Settings, load_settings
from actors.worker import EmbeddedWorker
from actors.worker_process import ForwardBroker, WorkerProcess
from app.dialects import ERROR_PREFIXES
from app.docs import asset, openapi_config
from app.errors import classify
from app.loop_reads import LoopReads
from app.native import NativeDatasets, NativeImports
from app.ops import OPS_HANDLERS
from app.web import WEB_HANDLERS
from app.wiring import make_runtime

logger = logging.getLogger("importer.app")


def native_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The native error shape: {"error": {"code", "message"}} with the right status; under a
    dialect's prefix (an unknown route there, say) that dialect's own shape."""
    path = request.url.path
    for prefix, render in ERROR_PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            response: Response[Any] = render(request, exc)
            return response
    failure = classify(exc, request, too_large="request body is larger than the upload limit")
    body: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.field:
        body["field"] = failure.field
    if failure.extra:
        body["details"] = failure.extra
    return Response({"error": body}, status_code=failure.status, headers=failure.headers)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None, run_worker: bool | None = None) -> Litestar:
    """Build the app. Embedded (no Redis): the worker runs in this process unless run_worker=False."""
    settings = settings or (runtime.settings if runtime else load_settings())
    state: dict[str, Any] = {}

    def startup(app: Litestar) -> None:
        embedded_worker = settings.embedded if run_worker is None else run_worker
        if embedded_worker and runtime is None and settings.embedded_worker == "process":
            # The worker gets its own process (and GIL): status requests stay fast during imports.
            child = WorkerProcess(settings, settings.worker_threads)
            rt = make_runtime(settings, broker=ForwardBroker(child))
            rt.worker_process = child
            child.start()
            state["worker"] = child
        else:
            rt = runtime or make_runtime(settings)
            if embedded_worker:
                worker = EmbeddedWorker(rt)
                worker.start()
                state["worker"] = worker
        app.state.runtime = rt
        app.state.loop_reads = state["loop_reads"] = LoopReads(rt.engine)
        # The start-up heap (modules, the app, the runtime) never becomes garbage: keep it out of
        # the collector's full passes, which would otherwise stall requests for tens of ms.
        gc.freeze()

    def shutdown(app: Litestar) -> None:
        worker = state.pop("worker", None)
        if worker is not None:
            worker.stop()
        reads = state.pop("loop_reads", None)
        if reads is not None:
            reads.close()
        if runtime is None:
            app.state.runtime.close()

    from app.dialects import DIALECT_HANDLERS

    return Litestar(
        route_handlers=[NativeImports, NativeDatasets, *OPS_HANDLERS, *DIALECT_HANDLERS, asset, *WEB_HANDLERS],
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers={Exception: native_error},
        request_max_body_size=settings.max_upload_bytes + 2 * 1024 * 1024,
        openapi_config=openapi_config(),
        debug=False,
        logging_config=None,  # actors.logs.setup_logging configures logging (JSON lines, ticket ids)
    )
