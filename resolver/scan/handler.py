"""The scan path: a raw ASGI handler mounted at the root of the Starlette app.

``parse → role → unit state → rules → respond``, as docs/architecture.md draws it. It reads the
raw (still percent-encoded) path so that ``%2F`` inside a value stays data, answers like
a GS1-Conformant Resolver (307 + Link to the linkset, linkset on request, 300/400/404,
CORS), and never lets the request choose a target: every href comes from the rules or
from uploaded link data, and only the incoming query string is appended to it.

It is raw ASGI rather than a Starlette endpoint because it is the hot path: no Request
or Response objects, headers read once, the response written directly.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send

from ext import GS1Error, compression, parse
from ext.dl import DigitalLink
from resolver.access.tokens import carries_credential, token_from_headers
from resolver.ops import logs
from resolver.ops.logs import REQUEST_ID
from resolver.rules.linktypes import normalise
from resolver.scan import linkset as linksets
from resolver.scan.decide import (
    NO_STORED_LINKS,
    Decision,
    ScanRequest,
    StoredLinks,
    UnitFacts,
    decide,
    usable_links,
)
from resolver.scan.defaults import LevelDefault
from resolver.scan.defaults import for_levels as level_defaults
from resolver.scan.escapes import escape_error
from resolver.scan.memo import TTL, Answer, AnswerMemo, Key
from resolver.scan.negotiate import Preferences, languages, media_types, wants_html, wants_linkset
from twin.scans import ScanEvent

if TYPE_CHECKING:
    from resolver.ops.metrics import Metrics
    from resolver.rules.compiler import CompiledRules
    from resolver.rules.holder import RulesHolder
    from resolver.services import Services

log = logging.getLogger("serialink.resolver.scan")

CORS = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"Link, Location")]
PREFLIGHT = CORS + [
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (b"access-control-allow-headers", b"Accept, Accept-Language, Authorization, Content-Type"),
    (b"access-control-max-age", b"86400"),
]
# A scan's answer depends on the credential it carries (Authorization, or a serialink_*
# cookie): shared caches must keep anonymous copies apart from credentialed requests.
VARY = (b"vary", b"Accept, Accept-Language, Authorization, Cookie")
MAX_URI = 8192

#: (status, GS1 error code or None, Accept-Language) -> (HTML, extra headers): the built-in
#: pages' styled error page in the visitor's language, set by the app (the scan path may not
#: import the pages); only errors reach it, never a 307
ErrorPage = Callable[[int, str | None, str | None], tuple[bytes, list[tuple[bytes, bytes]]]]
#: (the SSCC's twin.aggregation.Aggregate, Accept-Language) -> (HTML, extra headers): the
#: built-in pages' page of what a case or pallet holds, set by the app; only called for a
#: logistics role the contents are shown to (resolver.scan.sscc) that asks for HTML
SsccPage = Callable[[Any, str | None], tuple[bytes, list[tuple[bytes, bytes]]]]


class ScanHandler:
    """Resolves GS1 Digital Link requests with the worker's services (set by the app's lifespan)."""

    def __init__(self, rules: RulesHolder, metrics: Metrics) -> None:
        self.rules = rules
        self.metrics = metrics
        self.services: Services | None = None
        self.error_page: ErrorPage | None = None
        self.memo = AnswerMemo()  # anonymous GTIN-level 307s (resolver.scan.memo)
        self.sscc_page: SsccPage | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            rid = None
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    rid = value
                    break
            logs.bind(rid)  # echoed by _send, carried by any log line of this request
        if method == "OPTIONS":
            await _send(send, 204, PREFLIGHT, b"")
            return
        if method not in ("GET", "HEAD"):
            await _send(send, 405, CORS + [(b"allow", b"GET, HEAD, OPTIONS"), (b"content-type", b"application/json")],
                        b'{"error":"method not allowed: a resolver answers GET, HEAD and OPTIONS"}')
            return
        services = self.services
        if services is None:  # a request before the lifespan finished starting
            await _send(send, 503, CORS + [(b"content-type", b"application/problem+json"), (b"retry-after", b"1")],
                        b'{"status":503,"title":"starting"}')
            return
        try:
            await self.resolve(services, scope, send, method == "HEAD", time.perf_counter())
        except Exception:  # a bug must not take the worker down or leave the client hanging
            log.exception("scan failed: %s", scope.get("path"))
            self.metrics.observe_scan(500, 0.0)
            try:
                await _send(send, 500, CORS + [(b"content-type", b"application/problem+json")],
                            b'{"status":500,"title":"internal error"}')
            except Exception:
                pass  # the response had already started

    async def resolve(self, services: Services, scope: Scope, send: Send, head: bool, started: float) -> int:
        rules = services.rules.current
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        accept = accept_language = authorization = cookie = debug = rid = country = None
        country_header = services.country_header  # bytes, or None when not configured
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"accept-language":
                accept_language = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"cookie":
                cookie = value.decode("latin-1")
            elif name == b"x-serialink-debug":
                debug = value
            elif name == country_header:
                country = value
        rid = logs.bind(rid)  # echoed in the response, carried by any log line of this scan
        path = raw_path.decode("latin-1")
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]  # resolvers SHOULD tolerate one trailing slash
        qs = query.decode("latin-1")
        if len(path) + len(qs) > MAX_URI:
            services.metrics.observe_scan(414, time.perf_counter() - started)
            return await _problem(send, head, 414, "the URI is too long", None, accept,
                                  page=self.error_page, accept_language=accept_language)
        memo_key: Key | None = None
        if authorization is None and cookie is None and debug is None:
            memo_key = (path, qs, accept, accept_language)
            hit = self.memo.get(memo_key, rules, started)
            if hit is not None and services.lookup.cached_gtin_data(hit.gtin) is hit.data:
                return await self._answer_again(services, send, hit, rid, country, started)
        uri = rules.root + path + ("?" + qs if qs else "")
        same_as = None
        if "%" in uri and (bad_escape := escape_error(uri)) is not None:  # never read leniently: 400
            services.metrics.observe_scan(400, time.perf_counter() - started)
            return await _problem(send, head, 400, "invalid GS1 Digital Link URI", bad_escape, accept,
                                  page=self.error_page, accept_language=accept_language)
        try:
            dl = parse(uri)
        except GS1Error as strict_error:
            legacy, same_as = self._legacy(uri, path, rules.root, qs)
            if legacy is None:
                services.metrics.observe_scan(400, time.perf_counter() - started)
                return await _problem(send, head, 400, "invalid GS1 Digital Link URI", strict_error, accept,
                                      page=self.error_page, accept_language=accept_language)
            dl = legacy
        gtin = dl.gtin
        serial = dl.serial
        token = token_from_headers(authorization, cookie) if (authorization or cookie) else None
        if gtin is None and token is not None and (sscc := dl.get("00")) is not None:
            answered = await self._sscc(send, head, services, sscc, token, accept, accept_language)
            if answered:
                services.metrics.observe_scan(answered, time.perf_counter() - started)
                return answered
        role, claims = services.token_verifier.role_for_scan(token, gtin or "", serial) if token else ("consumer", None)
        link_type = dl.param("linkType")
        if link_type is not None:
            link_type = "linkset" if link_type in ("linkset", "all") else normalise(link_type)
        elif accept is not None and wants_linkset(accept):
            link_type = "linkset"
        prefs = Preferences(languages(accept_language), dl.param("context"), media_types(accept) if accept else ())
        lookup = services.lookup
        # the GTIN's data as it was before deciding: what a remembered answer is checked against
        gtin_data = lookup.cached_gtin_data(gtin) if memo_key is not None and serial is None and gtin else None
        facts = await lookup.facts(dl)
        if gtin is None or lookup.no_stored_links(gtin):
            stored = NO_STORED_LINKS
        else:
            stored = usable_links(rules, await lookup.stored_links(gtin, facts.lot, serial))
        explain = debug is not None and claims is not None and claims.role in ("manufacturer", "admin")
        request = ScanRequest(link_type, prefs, int(time.time() * 1000))
        decision = decide(rules, dl, role, facts, request, stored, explain)
        extra: list[tuple[bytes, bytes]] = []
        if explain:
            extra.append((b"x-serialink-trace", _trace_header(decision)))
        if same_as is not None:
            extra.append((b"link", f'<{same_as}>; rel="owl:sameAs"'.encode("latin-1", "replace")))
        # any credential, even one that proves nothing: private, no-store (never a shared copy)
        cache = rules.cache_control[carries_credential(authorization, cookie)]
        answered_type = decision.link.link_type if decision.link else link_type
        state = facts.state if serial else None
        if gtin is not None:
            services.scans.add(ScanEvent(request.now_ms, gtin, serial, facts.lot, role, answered_type, state,
                                           prefs.context, country_code(country) if country else None))
        services.metrics.observe_scan(decision.status, time.perf_counter() - started, answered_type, role, state)
        if decision.status == 307:
            href = decision.href
            assert href is not None  # every 307 decision carries its target
            location = href + (("&" if "?" in href else "?") + qs if qs else "")
            linkset_link = f'<{dl.anchor(rules.root)}?linkType=linkset>; rel="linkset"; type="application/linkset+json"'
            headers = [CORS[0], CORS[1], (b"location", location.encode("latin-1", "replace")), VARY,
                       (b"cache-control", cache), (b"link", linkset_link.encode("latin-1", "replace")),
                       (b"content-length", b"0"), (b"x-request-id", rid)]
            if extra:
                headers += extra
            elif gtin_data is not None and memo_key is not None and gtin is not None:
                self.memo.put(memo_key, Answer(started + TTL, rules, gtin_data, headers[:-1], gtin, facts.lot,
                                               answered_type, prefs.context))
            await send({"type": "http.response.start", "status": 307, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 307
        if decision.status == 200:
            product = rules.product_for(gtin) if gtin else None
            defaults = await self._level_defaults(services, rules, dl, role, facts, prefs, request.now_ms, stored)
            body = linksets.build(rules, dl, product, stored, role, facts, defaults)
            return await self._linkset_response(send, head, body, accept, dl, rules, cache, extra)
        if decision.status == 300:
            product = rules.product_for(gtin) if gtin else None
            body = linksets.multiple_choices(rules, dl, product, decision.candidates, facts)
            return await self._linkset_response(send, head, body, accept, dl, rules, cache, extra, status=300)
        return await _problem(send, head, 404, decision.reason or "not found", None, accept, extra,
                              page=self.error_page, accept_language=accept_language)

    async def _answer_again(self, services: Services, send: Send, hit: Answer, rid: bytes, country: bytes | None,
                            started: float) -> int:
        """A remembered 307: the scan is still recorded, the request id is its own."""
        services.scans.add(ScanEvent(int(time.time() * 1000), hit.gtin, None, hit.lot, "consumer", hit.link_type, None,
                                     hit.context, country_code(country) if country else None))
        services.metrics.observe_scan(307, time.perf_counter() - started, hit.link_type, "consumer", None)
        self.memo.hits += 1
        await send({"type": "http.response.start", "status": 307, "headers": hit.headers + [(b"x-request-id", rid)]})
        await send({"type": "http.response.body", "body": b""})
        return 307

    async def _sscc(self, send: Send, head: bool, services: Services, sscc: str, token: str, accept: str | None,
                    accept_language: str | None) -> int:
        return await _sscc_answer(self, send, head, services, sscc, token, accept, accept_language)

    async def _level_defaults(self, services: Services, rules: CompiledRules, dl: DigitalLink, role: str,
                              facts: UnitFacts, prefs: Preferences, now_ms: int,
                              stored: StoredLinks) -> dict[str, LevelDefault | None]:
        """Per level of the linkset, where a scan of that level's own DL URI would go for this caller.

        The scan's own level reuses its facts; a less granular level is looked up as a scan of
        its anchor would be (a GTIN on its own is ``unserialised``, a lot carries its lot's
        recall), so each level's default is the redirect that level really gets.
        """
        scanned = dl.anchor(rules.root)
        scans = []
        for level, anchor in linksets.levels(rules, dl, facts):
            if anchor == scanned:
                scans.append((level, dl, facts))
            else:
                level_dl = parse(anchor)
                scans.append((level, level_dl, await services.lookup.facts(level_dl)))
        return level_defaults(rules, scans, role, prefs, now_ms, stored)

    def _legacy(self, uri: str, path: str, root: str, qs: str) -> tuple[DigitalLink | None, str | None]:
        """Labels in the field: compressed URIs, short GTINs, old short names."""
        if compression.is_compressed(uri):
            try:
                expanded = compression.decompress(uri)
                full = parse(root + expanded.uri()[len(expanded.stem):])
                return full, full.uri(root)
            except (GS1Error, compression.CompressionError):
                return None, None
        try:
            return parse(uri, lenient=True), None
        except GS1Error:
            return None, None

    async def _linkset_response(self, send: Send, head: bool, body: dict[str, Any], accept: str | None,
                                dl: DigitalLink, rules: CompiledRules, cache: bytes,
                                extra: list[tuple[bytes, bytes]], status: int = 200) -> int:
        if accept is not None and wants_html(accept):
            page = linksets.page(body, body["linkset"][0]["itemDescription"] if body["linkset"] else "Links")
            headers = CORS + [(b"content-type", b"text/html; charset=utf-8"), VARY, (b"cache-control", cache)] + extra
            await _send(send, status, headers, page.encode(), head)
            return status
        media = b"application/json" if accept and accept.startswith("application/json") else linksets.MEDIA_TYPE.encode()
        headers = CORS + [(b"content-type", media), VARY, (b"cache-control", cache),
                          (b"link", linksets.CONTEXT_LINK.encode())] + extra
        await _send(send, status, headers, linksets.dumps(body), head)
        return status


def country_code(value: bytes) -> str | None:
    """An ISO 3166 alpha-2 code from the trusted header; anything else (a CDN's XX for
    unknown, T1 for Tor, garbage) is no country."""
    if len(value) == 2 and value.isalpha() and value.isascii():
        code = value.decode("ascii").upper()
        return None if code == "XX" else code
    return None


def _trace_header(decision: Decision) -> bytes:
    text = " | ".join(decision.trace) or f"status {decision.status}"
    return text.encode("ascii", "replace")[:4000]


Headers = list[tuple[bytes, bytes]]


async def _sscc_answer(handler: Any, send: Send, head: bool, services: Services, sscc: str, token: str,
                       accept: str | None, accept_language: str | None) -> int:
    """``/00/{sscc}`` for a logistics role (resolver.scan.sscc); 0: answer as for a consumer."""
    from resolver.scan.sscc import contents_linkset, covers, logistics_claims

    claims = logistics_claims(services, token)
    if claims is None:
        return 0
    agg = await services.store.get_aggregation(sscc)
    if agg is None:
        return await _problem(send, head, 404, f"SSCC {sscc} is not known here", None, accept,
                              page=handler.error_page, accept_language=accept_language)
    if not covers(claims, agg):
        return 0
    if accept is not None and wants_html(accept) and handler.sscc_page is not None:
        page, page_headers = handler.sscc_page(agg, accept_language)
        headers = CORS + [(b"content-type", b"text/html; charset=utf-8"), VARY,
                          (b"cache-control", b"private, no-store")] + page_headers
        await _send(send, 200, headers, page, head)
        return 200
    body = orjson.dumps(contents_linkset(agg))
    headers = [CORS[0], CORS[1], (b"content-type", b"application/linkset+json"), VARY,
               (b"cache-control", b"private, no-store")]
    await _send(send, 200, headers, body, head)
    return 200


async def _send(send: Send, status: int, headers: Headers, body: bytes, head: bool = False) -> None:
    rid = REQUEST_ID.get()
    headers = headers + [(b"content-length", str(len(body)).encode())] + ([(b"x-request-id", rid)] if rid else [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _problem(send: Send, head: bool, status: int, title: str, error: GS1Error | None, accept: str | None,
                   extra: Headers | None = None, *, page: ErrorPage | None = None,
                   accept_language: str | None = None) -> int:
    """A 4xx with the reason: JSON (application/problem+json) or, for browsers, a page in the
    visitor's language (``page``, the built-in pages' renderer) or a short one without it."""
    detail: dict[str, Any] = {"status": status, "title": title}
    if error is not None:
        detail.update({"detail": str(error), "reason": error.reason, "code": error.code})
        if error.ai is not None:
            detail["ai"] = error.ai
        if error.position is not None:
            detail["position"] = error.position
    if accept is not None and wants_html(accept) and page is not None:
        body, page_headers = page(status, error.code if error is not None else None, accept_language)
        ctype = b"text/html; charset=utf-8"
        extra = (extra or []) + page_headers
    elif accept is not None and wants_html(accept):
        text = html.escape(detail.get("detail", title))
        body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{status} {html.escape(title)}</title>"
                f"<h1>{html.escape(title)}</h1><p>{text}</p></html>").encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = orjson.dumps(detail)
        ctype = b"application/problem+json"
    headers = CORS + [(b"content-type", ctype), VARY, (b"cache-control", b"no-store")] + (extra or [])
    await _send(send, status, headers, body, head)
    return status
