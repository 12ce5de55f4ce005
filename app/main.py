"""Builds the FastAPI app; nothing else lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.docs_ui import install_docs
from app.errors import BODY_RESPONSES, document_problems, install_handlers
from app.limits import UploadLimit
from app.metrics import HttpMetrics
from app.ratelimit import RateLimitHeaders
from app.routes import denoise, generate, health, jobs, models, style_transfer, styles, super_resolve, web
from app.state import GatewayState
from imgenhance import __version__
from imgenhance.settings import Settings, get_settings

DESCRIPTION = """Self-hosted image enhancement. Submit an image to a task, get a job id
(202) or, with `Prefer: wait=N`, the finished image. Errors are
`application/problem+json` with a stable `code`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = GatewayState.open(settings)
        app.state.gateway = state
        await state.start()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="imgenhance",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # app.docs_ui serves /docs and /redoc from local files
        redoc_url=None,
    )
    app.dependency_overrides[get_settings] = lambda: settings
    install_handlers(app)
    install_docs(app)
    document_problems(app)
    for routes in (super_resolve, denoise, style_transfer, generate):
        app.include_router(routes.router, responses=BODY_RESPONSES)
    for routes in (jobs, models, styles, health, web):
        app.include_router(routes.router)
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(HttpMetrics)  # outermost: sees every request, refusals included
    return app
