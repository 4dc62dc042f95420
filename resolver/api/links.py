"""Link data management: what brands upload so the resolver has somewhere to send each level.

``PUT /v1/links`` replaces the linksets of one or many anchors in one call (idempotent:
the same body twice leaves the same state). An anchor is a DL URI on any stem
(``https://id.example.com/01/09506000134352/10/L42``) naming a GTIN, a GTIN + lot or a
GTIN + serial; an empty ``links`` list deletes the anchor's links.
``GET /v1/links/{gtin}`` lists one GTIN's anchors and links. Both need a manufacturer
(or admin) token covering the GTIN: there is no unauthenticated listing.

Every href passes the same target check as the rules file's (resolver.rules.targets:
parsed as a browser would, https unless ``allowed_target_schemes`` says otherwise, the host
on ``allowed_target_hosts``) — uploaded data can never turn the resolver into an open redirect.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ext import GS1Error, escape, parse
from resolver.api.common import claims, json_body, json_response
from resolver.errors import Invalid, PayloadTooLarge
from resolver.rules.compiler import _link_type_problem
from resolver.rules.linktypes import normalise
from resolver.services import services_of
from twin.errors import InvalidInput
from twin.events import Actor
from twin.links import Anchor, LinkRecord, check_links

WRITERS = ("manufacturer", "admin")
MAX_ANCHORS = 1000


def _anchor(value: object, field: str) -> Anchor:
    if not isinstance(value, str):
        raise Invalid("expected a GS1 Digital Link URI naming a GTIN, GTIN + lot or GTIN + serial", field)
    try:
        dl = parse(value)
    except GS1Error as exc:
        raise Invalid(f"not a valid GS1 Digital Link URI: {exc}", field) from None
    if dl.primary_key[0] != "01" or dl.attributes or any(ai not in ("10", "21") for ai, _ in dl.qualifiers) \
            or (dl.lot is not None and dl.serial is not None):
        raise Invalid("an anchor is /01/{gtin}, /01/{gtin}/10/{lot} or /01/{gtin}/21/{serial}", field)
    return Anchor(dl.gtin, dl.lot, dl.serial)


def _list_field(item: dict, key: str):
    """A list of strings becomes a tuple; anything else is passed on for check_links to name."""
    value = item.get(key, [])
    return tuple(value) if isinstance(value, list) else value


def _links(raw: object, field: str, rules) -> list[LinkRecord]:
    if not isinstance(raw, list):
        raise Invalid("expected a list of links", field)
    out = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise Invalid("expected an object with type, href and title", where)
        unknown = set(item) - {"type", "href", "title", "media", "lang", "context"}
        if unknown:
            raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", where)
        link_type = item.get("type")
        if not isinstance(link_type, str):
            raise Invalid("expected a link type such as gs1:pip", f"{where}.type")
        link_type = normalise(link_type)
        if (why := _link_type_problem(link_type)) is not None:
            raise Invalid(why, f"{where}.type")
        href = item.get("href")
        if not isinstance(href, str):
            raise Invalid("expected an absolute https URL", f"{where}.href")
        if (why := rules.target_problem(href)) is not None:
            raise Invalid(f"not an allowed link target: {why}", f"{where}.href")
        out.append(LinkRecord(link_type, href, item.get("title"), item.get("media"),
                              _list_field(item, "lang"), _list_field(item, "context")))
    return out


async def put_links(request: Request) -> Response:
    claims(request, WRITERS)  # who may write at all, before reading the body
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("linksets"), list):
        raise Invalid('expected {"linksets": [{"anchor": DL URI, "links": [...]}, ...]}', "linksets")
    if len(body["linksets"]) > MAX_ANCHORS:
        raise PayloadTooLarge(f"at most {MAX_ANCHORS} anchors per call", "linksets")
    services = services_of(request)
    rules = services.rules.current
    plan = []
    for i, item in enumerate(body["linksets"]):
        if not isinstance(item, dict):
            raise Invalid("expected an object with anchor and links", f"linksets[{i}]")
        anchor = _anchor(item.get("anchor"), f"linksets[{i}].anchor")
        links = _links(item.get("links"), f"linksets[{i}].links", rules)
        try:
            links = list(check_links(anchor, links))
        except InvalidInput as exc:
            raise Invalid(exc.problem, f"linksets[{i}].{exc.field}" if exc.field else f"linksets[{i}]") from None
        plan.append((anchor, links))
    # authorise every anchor before writing any (all or nothing on scope)
    gtins = {anchor.gtin for anchor, _ in plan}
    who = None
    for gtin in sorted(gtins):
        who = claims(request, WRITERS, gtin)
    if who is None:
        raise Invalid("no linksets given", "linksets")
    actor = Actor(who.role, who.principal)
    written = 0
    for anchor, links in plan:
        await services.store.put_links(anchor, links, actor)
        services.lookup.invalidate(anchor.gtin, "links", anchor.subject)
        written += 1
    return json_response({"anchors": written})


async def get_links(request: Request) -> Response:
    gtin = request.path_params["gtin"]
    if not (len(gtin) == 14 and gtin.isdigit()):
        raise Invalid("expected a 14-digit GTIN", "gtin")
    claims(request, WRITERS, gtin)
    services = services_of(request)
    root = services.rules.current.root
    out = []
    for anchor in await services.store.list_link_anchors(gtin):
        links = await services.store.get_links(anchor)
        uri = f"{root}/01/{gtin}" + (f"/10/{escape(anchor.lot)}" if anchor.lot else "") + \
              (f"/21/{escape(anchor.serial)}" if anchor.serial else "")
        out.append({"anchor": uri, "links": [
            {k: v for k, v in (("type", l.link_type), ("href", l.href), ("title", l.title), ("media", l.type),
                               ("lang", list(l.hreflang)), ("context", list(l.context))) if v}
            for l in links]})
    return json_response({"gtin": gtin, "linksets": out})


routes = [
    Route("/links", put_links, methods=["PUT", "POST"]),
    Route("/links/{gtin}", get_links, methods=["GET"]),
]
