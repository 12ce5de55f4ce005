"""Refuse an upload once it passes the size limit, while it is still arriving.

Starlette's form parser would spool any size to disk before a handler could look at
it. This ASGI middleware counts body bytes on upload routes as they are received:
a ``Content-Length`` over the limit is refused before reading, and a chunked body is
cut off at the first chunk past the limit, with a 413 problem either way.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, UploadTooLarge, problem_body

MULTIPART_SLACK = 64 * 1024  # field headers, boundaries and the small form fields


# Routes that take more than one upload: each may be up to the limit.
UPLOADS_PER_REQUEST = {"/v1/jobs/style-transfer": 2}


class UploadLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, path_prefix: str = "/v1/jobs/") -> None:
        self.app, self.max_bytes, self.path_prefix = app, max_bytes, path_prefix

    def limit(self, path: str) -> int:
        return self.max_bytes * UPLOADS_PER_REQUEST.get(path, 1) + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send)
            return

        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    await self._refuse(scope, send)
                    return {"type": "http.disconnect"}  # stops the form parser
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the app's reply to the cut-off body is dropped
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        mib = self.max_bytes / (1024 * 1024)
        body = json.dumps(
            problem_body(
                413,
                UploadTooLarge.code,
                UploadTooLarge.title,
                f"the upload is larger than the {mib:g} MiB limit",
                scope["path"],
                max_bytes=self.max_bytes,
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
