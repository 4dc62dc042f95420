"""No shared cache keeps an answer given to a credential: the rule for every non-scan route.

A resolver sits behind CDNs, and some of them (nginx's ``proxy_cache`` among them) store a
response to a request with ``Authorization`` as readily as any other. So an answer to a
request that carried a credential (an ``Authorization`` header or a ``serialink_*``
cookie) leaves as ``private, no-store`` unless its endpoint already forbade shared caches
(``no-store`` or ``private``): a batch's serial file, a technician's unit view, a line
listing. Answers to anonymous requests keep what
their endpoint chose (those that may differ by credential carry ``Vary`` themselves).
Scans set their own headers on the hot path (resolver.scan.handler) by the same rule.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolver.access.tokens import carries_credential

PRIVATE = "private, no-store"


class PrivateWhenCredentialed:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = cookie = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"cookie":
                cookie = value.decode("latin-1")
        if not carries_credential(authorization, cookie):
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                current = headers.get("cache-control", "")
                if "no-store" not in current and "private" not in current:  # missing, or a shared cache may keep it
                    headers["cache-control"] = PRIVATE
            await send(message)

        await self.app(scope, receive, send_private)
