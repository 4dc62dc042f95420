"""The doors people use on a phone: sign-in links, the session page, an owner's sign-in
with a code, and an installer's "Record installation".

==========================================  ===================================================
``/u/signin/{code}``                        a one-time sign-in link (technician visit or
                                            installer): sets the session cookie, → /u/session
``/u/session``                              who this device is signed in as, until when
``POST /u/signout``                         ends the session (revoked everywhere) → /u/session
``/u/01/{gtin}/21/{serial}/signin``         "Is this yours?": a code to the registered contact
``…/signin/code``                           type the code: an owner session for the unit
``…/install``                               (installer session) record the installation
==========================================  ===================================================

Every form answers 303 See Other (Post/Redirect/Get); what a page announces afterwards
comes from a signed notice bound to the session and the unit (resolver.access.sessions).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from resolver import problems
from resolver.access import sessions
from resolver.errors import Invalid
from resolver.journeys import installs, owner_signin, visits
from resolver.journeys import tokens as token_journeys
from resolver.journeys.addressing import client_address
from resolver.journeys.channel import Channel
from resolver.pages.routes import (
    UNIT,
    Page,
    _page,
    _retry,
    _seconds_left,
    _view,
    check_csrf,
    csrf_value,
    page_claims,
    page_key,
    read_form,
)
from resolver.services import Services

LINK_STATUS = {"invalid": 404, "used": 200, "ended": 410, "withdrawn": 403}


# -- sign-in links and the session ------------------------------------------------------------


@_page
async def open_link(request: Request, services: Services) -> Response:
    """A technician's or installer's one-time link: the cookie, then the session page."""
    page = Page(request, services, "", None)
    code = request.path_params["code"]
    try:
        redeemed = await visits.redeem(services, code, client_address(request))
    except visits.LinkRefused as refused:
        mine = page.session.claims
        if refused.why == "used" and mine is not None and mine.token_id == sessions.link_id(services.secret, code):
            return RedirectResponse("/u/session", 303, headers={"Cache-Control": "no-store"})  # this device has it
        return page.message(LINK_STATUS[refused.why], page.texts[f"link_{refused.why}_title"],
                            page.texts[f"link_{refused.why}"])
    except problems.HANDLED as error:
        exc = problems.classify(error)
        return page.message(exc.status, page.texts["error_title"], next(iter(page.errors(exc).values())))
    response = RedirectResponse("/u/session", 303, headers={"Cache-Control": "no-store",
                                                            "Referrer-Policy": "no-referrer"})
    sessions.set_session(response, request, redeemed.token, sessions.cookie_max_age(redeemed.expires))
    return response


@_page
async def session_page(request: Request, services: Services) -> Response:
    """Who this device is signed in as; the units of a visit, one tap each."""
    page = Page(request, services, "", None)
    session = page.session
    claims = session.claims
    units = []
    if claims is not None and claims.units:
        from ext import escape

        units = [{"gtin": g, "serial": s, "href": f"/u/01/{g}/21/{escape(s)}"} for g, s in sorted(claims.units)]
    ended = None
    if claims is None and session.ended is not None:
        ended = page.texts["visit_ended"].format(visit=session.ended.extra.get("visit") or session.ended.token_id,
                                                 until=page.when(session.ended.expires)) \
            if session.ended.extra.get("kind") == "visit" else page.texts["installer_ended"]
        page._clear_session = True
    owner_of = None
    if claims is not None and claims.role == "owner" and claims.unit is not None:
        from ext import escape

        owner_of = {"gtin": claims.unit[0], "serial": claims.unit[1],
                    "href": f"/u/01/{claims.unit[0]}/21/{escape(claims.unit[1])}"}
    return page.render("session.html", units=units, ended=ended, owner_of=owner_of,
                       kind=claims.extra.get("kind") if claims is not None else None,
                       scope=sorted(claims.gtins) + list(claims.prefixes) if claims is not None else [],
                       csrf=csrf_value(services, claims), form_key=secrets.token_urlsafe(16))


@_page
async def sign_out(request: Request, services: Services) -> Response:
    """End this device's session: revoked in the store (every host refuses it), cookie gone."""
    page = Page(request, services, "", None)
    form = await read_form(request)
    claims = page.session.claims
    if claims is not None:
        check_csrf(services, claims, form)
        key = form.get("idempotency_key") or secrets.token_urlsafe(16)
        await token_journeys.revoke_token(services, claims, claims.token_id, "signed out on the device",
                                          Channel(client_address(request), "page", key[:100]))
    response = RedirectResponse("/u/session", 303, headers={"Cache-Control": "no-store"})
    sessions.clear_session(response, request)
    return response


# -- owners: sign in with a code --------------------------------------------------------------


@_page
async def owner_sign_in(request: Request, services: Services) -> Response:
    gtin, serial = page_key(request, "/signin")
    page = Page(request, services, gtin, serial)
    snap, view, _ = await _view(page, None)
    if not snap.known:
        return page.message(404, page.texts["unknown_title"], page.texts["unknown_text"])
    if snap.unit.owner is None:
        return page.render("already.html", 409, view=view, unregistered=True)
    form: dict[str, str] = {}
    if request.method == "POST":
        try:
            form = await read_form(request)
            pending_id = await owner_signin.request_code(services, gtin, serial, form.get("contact"),
                                                         page.channel(form), page.lang)
        except problems.HANDLED as error:
            exc = problems.classify(error)
            return page.render("owner_signin.html", exc.status, _retry(exc), view=view, form=form,
                               errors=page.errors(exc, "signin"), fields_shown=("contact",), form_key=form.get("idempotency_key") or secrets.token_urlsafe(16))
        return page.redirect(f"{page.base}/signin/code?{urlencode({'p': pending_id})}")
    return page.render("owner_signin.html", view=view, form={}, errors=None, form_key=secrets.token_urlsafe(16))


@_page
async def owner_code(request: Request, services: Services) -> Response:
    gtin, serial = page_key(request, "/signin/code")
    page = Page(request, services, gtin, serial)
    minutes = int(owner_signin.CODE_TTL.total_seconds() // 60)
    if request.method == "GET":
        return page.render("owner_code.html", pending=request.query_params.get("p", ""), errors=None,
                           minutes=minutes, form_key=secrets.token_urlsafe(16), gone=False)
    form: dict[str, str] = {}
    try:
        form = await read_form(request)
        grant = await owner_signin.confirm_code(services, gtin, serial, form.get("p", ""), form.get("code", ""),
                                                page.channel(form))
    except problems.HANDLED as error:
        exc = problems.classify(error)
        gone = exc.status in (404, 410)  # expired, used or locked: one answer, ask again
        return page.render("owner_code.html", exc.status, _retry(exc), pending=form.get("p", ""),
                           errors={"code": page.texts["err_410_signin"]} if gone else page.errors(exc, "signin"),
                           fields_shown=("code",),
                           minutes=minutes, gone=gone,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16))
    return page.redirect(page.base, ("signed_in", grant.token_id), cookie=(grant.token, _seconds_left(grant.expires_at)))


# -- installers ------------------------------------------------------------------------------


@_page
async def install(request: Request, services: Services) -> Response:
    """A signed-in installer records where and when the unit was fitted."""
    gtin, serial = page_key(request, "/install")
    page = Page(request, services, gtin, serial)
    claims = await page_claims(request, services, gtin, serial)
    mine = page.session.claims
    if claims is None or claims.role != "installer":
        if mine is not None and mine.role == "installer":
            return page.message(403, "403", page.texts["page_403_install"])
        return page.message(401, "401", page.texts["page_401_install"])
    snap, view, _ = await _view(page, claims)
    markets = installs.markets(services)
    context = {"view": view, "markets": markets, "fields_shown": ("site", "installed_on", "jurisdiction"), "certification": claims.extra.get("certification", ""),
               "company": claims.extra.get("company", ""), "csrf": csrf_value(services, claims),
               "default_market": snap.unit.jurisdiction or (services.warranty.default_jurisdiction
                                                            if services.warranty is not None else "")}
    if request.method == "GET":
        return page.render("install.html", form={"installed_on": services.today().isoformat()}, errors=None,
                           form_key=secrets.token_urlsafe(16), **context)
    form: dict[str, str] = {}
    errors: dict[str, str] = {}
    try:
        form = await read_form(request)
        check_csrf(services, claims, form)
        site = form.get("site", "").strip()
        page.check(errors, "install",
                   ("site", lambda: _site(site)),
                   ("installed_on", lambda: installs.installed_on(form.get("installed_on"), services.today())),
                   ("jurisdiction", lambda: _market(form.get("jurisdiction"), markets)))
        if not errors:
            version = form.get("expected_version", "")
            await installs.record_installation(services, claims, gtin, serial, form,
                                               int(version) if version.isdigit() else None, page.channel(form))
    except problems.HANDLED as error:
        exc = problems.classify(error)
        errors.update(page.errors(exc, "install"))
        return page.render("install.html", exc.status, _retry(exc), form=form, errors=errors,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16), **context)
    if errors:
        return page.render("install.html", 422, form=form, errors=errors,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16), **context)
    return page.redirect(page.base, ("installed", claims.token_id))


def _site(site: str) -> None:
    """The same limits record_installation applies, checked with the other fields."""
    if not site:
        raise Invalid("required", "site")
    if len(site) > 300:
        raise Invalid("at most 300 characters", "site")


def _market(value: str | None, markets: tuple[str, ...]) -> None:
    if value and value not in markets:
        raise Invalid("expected one of the markets listed", "jurisdiction")


routes: list[BaseRoute] = [
    Route("/u/signin/{code}", open_link, methods=["GET"]),
    Route("/u/session", session_page, methods=["GET"]),
    Route("/u/signout", sign_out, methods=["POST"]),
    Route(UNIT + "/signin/code", owner_code, methods=["GET", "POST"]),
    Route(UNIT + "/signin", owner_sign_in, methods=["GET", "POST"]),
    Route(UNIT + "/install", install, methods=["GET", "POST"]),
]
