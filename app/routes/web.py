"""The web page at ``/``: drop images, pick a task, model and options (the form is built
from ``GET /v1/models``), watch each job's progress, compare before and after, download.

Three hand-written files in ``app/web`` served as they are: no build step, and nothing
loaded from another host (the Content-Security-Policy below makes the browser refuse
it). The page itself needs no API key; when an API call answers 401 the page asks for
the key once and keeps it in the tab's ``sessionStorage``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
PAGE = WEB_DIR / "index.html"
# Revalidate on every load (ETag / Last-Modified answer 304), so an upgrade shows at once.
ASSET_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# This host only; blob: and data: for the uploads and results the page shows.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    **ASSET_HEADERS,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}


class WebAssets(StaticFiles):
    """``StaticFiles`` (content types, ETag, 304, no path escapes) with our cache headers."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(ASSET_HEADERS)
        return response


router = APIRouter(include_in_schema=False)
router.mount("/web", WebAssets(directory=WEB_DIR), name="web")


@router.get("/", response_class=FileResponse)
async def page() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
