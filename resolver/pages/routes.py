"""Built-in web pages: the journeys for a manufacturer without its own site.

Server-rendered (Jinja2, autoescaped: whatever a person types — a name, a summary — is
text on every page, never markup), no script, one small inline stylesheet, every
control labelled, errors announced and linked to their field; a page is one request.

=============================================  ================================================
``/u/01/{gtin}``                               the product: name and links
``/u/01/{gtin}/21/{serial}``                   the unit a consumer lands on: product, warranty,
                                               register button, manuals, parts, recall banner;
                                               the owner's registration and transfer for the owner
``…/register`` → ``…/confirm``                 registration, confirmed with the code sent to the contact
``…/claim``                                    take over with a transfer code
``…/transfer``                                 (owner) create or cancel a transfer code
``…/service``                                  (technician token) service history, log a visit
=============================================  ================================================

Language: Accept-Language, negotiated as the resolver does (resolver.i18n). Owners and
technicians carry their token in the ``serialink_token`` cookie (HttpOnly, SameSite=Lax);
forms that act with it also carry a CSRF value derived from the token id. Every form
carries an idempotency key made when it was rendered, so a double submit is a replay.
The app mounts this module's routes at its root.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from markupsafe import escape as html_escape
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ext import escape
from resolver import i18n, problems
from resolver.access import sessions
from resolver.access.tokens import Claims, TokenError, token_from_headers
from resolver.errors import (
    BadRequest,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from resolver.journeys import channel as channels
from resolver.journeys import events, reading, registration
from resolver.journeys import transfer as transfers
from resolver.journeys.addressing import client_address, parse_unit_path
from resolver.journeys.derived import derive_text
from resolver.journeys.views import CONSUMER_LINKS
from resolver.pages import life as lives
from resolver.pages.brand import IMAGE_TYPES, Brand, BrandHolder, pick
from resolver.problems import Problem
from resolver.scan.negotiate import languages
from resolver.services import Services, services_of
from twin.errors import TwinError
from twin.overlays import GtinScope, LotScope

TEMPLATES = Path(__file__).resolve().parent / "templates"
# the stylesheet is a template too (the brand's colours and fonts), its values checked by the
# theme's schema (hex colours, a font stack without markup): not HTML-escaped inside <style>
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"], ["css"], default=True),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters["fmt"] = lambda text, **values: html_escape(text).format(**values)  # markup-safe str.format
MAX_FORM_BYTES = 64 * 1024
SERVICE_ROLES = ("technician", "installer", "manufacturer", "admin")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'{images}; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP.format(images=""),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # codes travel in confirmation links: never leak them onwards
    "Cache-Control": "no-store",
    "Vary": "Accept-Language, Cookie",
}


def brand_of(request: Request) -> Brand:
    """The theme being served (reloaded when its file changes): see resolver.pages.brand."""
    holder: BrandHolder | None = getattr(request.app.state, "brand", None)
    return holder.current if holder is not None else Brand()


def chrome(brand: Brand, lang: str, locale: str) -> dict[str, Any]:
    """What every template gets: texts, the brand, and the visitor's way of writing dates,
    numbers and plurals (resolver.i18n, Babel)."""
    def plural(key: str, count: int, **values: Any) -> Markup:
        forms = texts[key]
        text = forms if isinstance(forms, str) else forms.get(i18n.plural_form(lang, count), forms["other"])
        return html_escape(text).format(count=i18n.format_number(count, locale), **values)

    texts = i18n.texts(lang)
    return {"lang": lang, "t": texts, "brand": brand, "tr": lambda value: pick(value, lang),
            "d": lambda value: i18n.format_date(value, locale), "dt": lambda value: i18n.format_datetime(value, locale),
            "n": lambda value: i18n.format_number(value, locale), "pl": plural}


def render_html(template: str, brand: Brand, lang: str, locale: str, **context: Any) -> str:
    context.setdefault("session", None)
    context.setdefault("fields_shown", ())
    return ENV.get_template(template).render(**chrome(brand, lang, locale), **context)


def page_headers(brand: Brand) -> dict[str, str]:
    origins = brand.image_origins
    if not origins:
        return SECURITY_HEADERS
    return {**SECURITY_HEADERS, "Content-Security-Policy": CSP.format(images=" " + " ".join(origins))}


class Page:
    """One request's page context: language, texts, brand, the unit's base path."""

    def __init__(self, request: Request, services: Services, gtin: str, serial: str | None = None) -> None:
        self.request, self.services, self.gtin, self.serial = request, services, gtin, serial
        self.lang = i18n.negotiate(request.headers.get("accept-language"), services.rules.current.default_language)
        self.texts = i18n.texts(self.lang)
        self.languages = languages(request.headers.get("accept-language"))
        self.locale = i18n.locale_for(self.lang, self.languages)
        self.brand = brand_of(request)
        self.base = f"/u/01/{gtin}" + (f"/21/{escape(serial)}" if serial is not None else "")
        self._session: sessions.Session | None = None
        self._clear_notice = self._clear_session = False

    @property
    def session(self) -> sessions.Session:
        """The visitor's session cookie, verified once per request (never raises)."""
        if self._session is None:
            self._session = sessions.current(self.services.token_verifier, self.request)
        return self._session

    def session_bar(self) -> dict[str, str] | None:
        """"Signed in as technician for visit V until T · Sign out", for visits and installers."""
        claims = self.session.claims
        kind = claims.extra.get("kind") if claims is not None else None
        if claims is None or kind not in sessions.SESSION_KINDS:
            return None
        until = i18n.format_datetime(claims.expires, self.locale)
        if kind == "visit":
            text = self.texts["session_visit"].format(visit=claims.extra.get("visit") or claims.token_id, until=until)
        else:
            text = self.texts["session_installer"].format(company=claims.extra.get("company", ""),
                                                          certification=claims.extra.get("certification", ""),
                                                          until=until)
        return {"text": text, "csrf": csrf_value(self.services, claims)}

    def notice(self, binding: str) -> tuple[str, str] | None:
        """The signed notice this session left for this unit's page (shown once)."""
        value = self.request.cookies.get(sessions.NOTICE_COOKIE)
        if value is None:
            return None
        self._clear_notice = True
        return sessions.read_notice(self.services.secret, value, self.gtin, self.serial or "", binding)

    def when(self, epoch: float) -> str:
        return i18n.format_datetime(epoch, self.locale)

    def look(self, name: str | None) -> dict[str, Any]:
        """The product as the brand presents it: model name, first picture, description."""
        product = self.brand.product(self.gtin)
        image = product.images[0] if product.images else None
        return {"model": pick(product.model, self.lang) or name or self.gtin,
                "description": pick(product.description, self.lang),
                "image": {"url": self.brand.image_url(image["src"]), "alt": pick(image["alt"], self.lang)}
                if image else None}

    def render(self, template: str, status: int = 200, headers: Mapping[str, str] | None = None,
               **context: Any) -> HTMLResponse:
        context.setdefault("session", self.session_bar())
        view = context.get("view")
        if "look" not in context and isinstance(view, Mapping) and self.gtin:
            context["look"] = self.look(view["product"]["name"])
        html = render_html(template, self.brand, self.lang, self.locale, base=self.base, **context)
        response = HTMLResponse(html, status, {**page_headers(self.brand), "Content-Language": self.lang,
                                               **(headers or {})})
        if self._clear_notice:
            sessions.clear_notice(response, self.request)
        if self._clear_session:
            sessions.clear_session(response, self.request)
        return response

    def message(self, status: int, title: str, text: str) -> HTMLResponse:
        return self.render("message.html", status, title=title, text=text, back=self.base if self.serial else None)

    def errors(self, exc: Problem, context: str = "") -> dict[str, str]:
        """The error as a message in the page's language, keyed by the form field at fault:
        always a catalogue text (the words right for this form, ``err_<context>_<field>``,
        first), never the API's English reason."""
        return {(exc.field or "form").removeprefix("data."): error_text(self.texts, exc, context)}

    def check(self, errors: dict[str, str], context: str, *checks: tuple[str, Any]) -> dict[str, str]:
        """Run every field's check and keep every error: a form shows them all at once."""
        for field, check in checks:
            if field in errors:
                continue
            try:
                check()
            except problems.HANDLED as error:
                exc = problems.classify(error)
                errors[field] = error_text(self.texts, exc, context)
        return errors

    def redirect(self, path: str, notice: tuple[str, str] | None = None, cookie: tuple[str, int] | None = None,
                 clear_cookie: bool = False, notice_data: str = "") -> Response:
        """303 See Other (Post/Redirect/Get). ``notice``: (kind, the session's token id) — a
        signed notice for this unit's page, bound to that session; never a query parameter."""
        response = RedirectResponse(path, 303, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        if cookie is not None:
            sessions.set_session(response, self.request, cookie[0], cookie[1])
        if clear_cookie:
            sessions.clear_session(response, self.request)
        if notice is not None:
            sessions.set_notice(response, self.request, sessions.notice_value(
                self.services.secret, notice[0], self.gtin, self.serial or "", notice[1], data=notice_data))
        return response

    def channel(self, form: Mapping[str, str]) -> channels.Channel:
        key = form.get("idempotency_key") or secrets.token_urlsafe(16)
        return channels.Channel(client_address(self.request), "page", channels.check_key(key))


def page_key(request: Request, suffix: str = "") -> tuple[str, str]:
    raw = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    return parse_unit_path(raw, "/u", suffix)


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, bounded in size; the first value of each field."""
    limit = min(services_of(request).settings.max_body_bytes, MAX_FORM_BYTES)
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        raise UnsupportedMediaType("expected a form (application/x-www-form-urlencoded)", "form")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the form is larger than {limit} bytes", "form")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the form is larger than {limit} bytes", "form")
        chunks.append(chunk)
    try:
        fields = parse_qs(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form is not valid UTF-8 form data", "form") from None
    return {k: v[0] for k, v in fields.items()}


async def page_claims(request: Request, services: Services, gtin: str, serial: str) -> Claims | None:
    """The cookie's (or header's) token if valid and covering this unit; else anonymous."""
    token = token_from_headers(request.headers.get("authorization"), request.headers.get("cookie"))
    if token is None:
        return None
    try:
        await services.revocations.fresh()
        claims = services.token_verifier.verify(token)
    except (TokenError, TwinError):
        return None
    return claims if claims.allows_unit(gtin, serial) else None


def csrf_value(services: Services, claims: Claims | None) -> str:
    return derive_text(services.secret, "csrf", claims.token_id) if claims is not None else ""


def check_csrf(services: Services, claims: Claims, form: Mapping[str, str]) -> None:
    if not hmac.compare_digest(csrf_value(services, claims).encode(), form.get("csrf", "").encode()):
        raise Forbidden("this form is out of date; reload the page", "csrf")


def error_text(texts: Mapping[str, Any], exc: Problem, context: str = "") -> str:
    """A form field's error in the catalogue's words (see :meth:`Page.errors`)."""
    field = (exc.field or "form").removeprefix("data.")
    if exc.status == 429:
        return str(texts["err_429"]).format(seconds=exc.retry_after or 60)
    keys = [f"err_{exc.status}_{field}", f"err_{field}", f"err_{exc.status}"]
    if context:
        keys = [f"err_{context}_{exc.status}_{field}", f"err_{context}_{field}"] + keys
    for key in keys:
        if isinstance(texts.get(key), str):
            return str(texts[key])
    return str(texts["err_form"])


def page_message(texts: Mapping[str, Any], status: int, field: str | None) -> tuple[str, str]:
    """(title, text) of an error page in the catalogue's words, never the API's reason."""
    title = {401: "signin_needed_title", 403: "denied_title", 404: "not_found_title"}.get(status, "error_title_page")
    for key in (f"page_{status}_{field}", f"page_{status}"):
        if isinstance(texts.get(key), str):
            return str(texts[title]), str(texts[key])
    return str(texts[title]), str(texts["page_500" if status >= 500 else "page_400"])


def _retry(problem: Problem) -> dict[str, str]:
    return {"Retry-After": str(problem.retry_after)} if problem.retry_after is not None else {}


def _page(handler):
    """Unknown units, store failures and malformed paths as pages, not stack traces."""
    async def endpoint(request: Request) -> Response:
        services = services_of(request)
        try:
            return await handler(request, services)
        except problems.HANDLED as error:
            exc = problems.classify(error)
            problems.log_problem(exc, error)
            page = Page(request, services, "", None)
            title, text = page_message(page.texts, exc.status, exc.field)
            html = render_html("message.html", page.brand, page.lang, page.locale, title=title, text=text, back=None)
            return HTMLResponse(html, exc.status, {**page_headers(page.brand), "Content-Language": page.lang,
                                                   **_retry(exc)})
    endpoint.__name__ = handler.__name__
    return endpoint


async def _view(page: Page, claims: Claims | None):
    """The snapshot and the view this visitor gets (a stale owner cookie: the consumer's)."""
    snap = await reading.snapshot(page.services, page.gtin, page.serial)
    if claims is not None and claims.role == "owner" and not reading.is_owner(claims, snap.unit):
        claims = None
    if claims is not None and claims.role not in ("owner",) + SERVICE_ROLES + ("regulator",):
        claims = None
    return snap, await reading.view_of(page.services, claims, snap, page.languages), claims


def recall_info(page: Page, overlays: Any, lot: str | None) -> dict[str, Any]:
    """The recall banner: the brand's reason in the visitor's language (its campaign in the
    theme, matched by lot or by the reason recorded with the recall; else the recorded
    reason as the brand wrote it) and where the button leads (the campaign's action, the
    product's, the brand's support site, else none — the banner then gives the phone)."""
    product = page.brand.product(page.gtin)
    campaigns = product.recall.get("campaigns", ())
    reasons: list[str] = []
    action = product.recall.get("action") or ({"href": page.brand.support["url"]} if page.brand.support.get("url")
                                              else None)
    lots = sorted({o.scope.lot for o in overlays if isinstance(o.scope, LotScope)})
    for overlay in overlays:
        scope_lot = overlay.scope.lot if isinstance(overlay.scope, LotScope) else lot
        campaign = next((c for c in campaigns if (scope_lot is not None and scope_lot in c.get("lots", ()))
                         or c.get("recorded_reason") == overlay.reason), None)
        text = pick(campaign["reason"], page.lang) if campaign is not None else overlay.reason
        if text and text not in reasons:
            reasons.append(text)
        if campaign is not None and campaign.get("action"):
            action = campaign["action"]
    return {"reasons": reasons, "action": action["href"] if action else None,
            "action_label": pick(action.get("label"), page.lang) if action else None, "lots": lots}


def _recalls(snap) -> list:
    return [o for o in snap.overlays if o.kind == "recalled"]


# -- the unit page ------------------------------------------------------------------------


NOTICES = {"registered": "registered_title", "claimed": "claimed_title", "signed_in": "signed_in_notice",
           "installed": "installed_notice", "saved": "saved"}


def _ended_notice(page: Page) -> str | None:
    """A visit or installer session that stopped counting: say so once, and drop the cookie."""
    ended = page.session.ended
    if ended is None:
        return None
    page._clear_session = True
    if ended.extra.get("kind") == "visit":
        return page.texts["visit_ended"].format(visit=ended.extra.get("visit") or ended.token_id,
                                                until=page.when(ended.expires))
    return page.texts["installer_ended"]


def unit_context(page: Page, snap, view: dict[str, Any], shown: Claims | None = None) -> dict[str, Any]:
    """What unit.html shows: the product as the brand presents it, the unit's moment of life
    (resolver.pages.life, from the record already read), the recall banner."""
    moments = page.brand.product(page.gtin).moments
    today = page.services.today()
    coverage = reading.coverage(page.services, snap.unit) if snap.known else None
    life = lives.life_of(snap.unit, snap.known, snap.recalled, coverage, moments, today)
    end = coverage.end if coverage is not None else None
    return {"view": view, "look": page.look(view["product"]["name"]), "life": life, "moments": moments,
            "recall": recall_info(page, _recalls(snap), snap.unit.lot),
            "warranty_days_left": max(0, (end - today).days) if end is not None else 0,
            "csrf": csrf_value(page.services, shown), "form_key": secrets.token_urlsafe(16),
            "register_href": page.base + "/register", "notice": None, "info": None,
            "technician": shown is not None and shown.role in SERVICE_ROLES,
            "installer": shown is not None and shown.role == "installer"}


@_page
async def unit_page(request: Request, services: Services) -> Response:
    gtin, serial = page_key(request)
    page = Page(request, services, gtin, serial)
    claims = await page_claims(request, services, gtin, serial)
    snap, view, shown = await _view(page, claims)
    here = services.rules.current.root + page.base  # the builtin rules' links to this very page: no use listing them
    view["links"] = {group: [l for l in links if l["href"] != here] for group, links in view["links"].items()}
    signed = page.notice(claims.token_id if claims is not None else "")
    notice = page.texts[NOTICES[signed[0]]] if signed is not None and signed[0] in NOTICES else None
    info = _ended_notice(page)
    if claims is not None and claims.role == "owner" and shown is None and snap.unit.owner is not None:
        from resolver.journeys.owner_signin import transferred_on

        when = transferred_on(await services.store.get_events(gtin, serial), claims.principal)
        if when is not None:  # the previous owner: not silently a stranger
            info = page.texts["transferred_notice"].format(date=i18n.format_date(when, page.locale))
    context = {**unit_context(page, snap, view, shown), "notice": notice, "info": info}
    return page.render("unit.html", 200 if snap.known else 404, **context)


@_page
async def product_page(request: Request, services: Services) -> Response:
    gtin = request.path_params["gtin"]
    if not (len(gtin) == 14 and gtin.isdigit()):
        raise NotFound("not a GTIN")
    page = Page(request, services, gtin)
    product = services.rules.current.product_for(gtin)
    if product is None:
        raise NotFound(f"no product {gtin} is known here")
    _, links = await reading.product_links(services, gtin, None, None, "consumer", page.languages)
    groups = [(g, [link for ty in types for link in links.get(ty, ())]) for g, types in CONSUMER_LINKS.items()]
    data = await services.lookup.gtin_data(gtin)
    recalls = [o for o in (data.overlays if data else ()) if o.kind == "recalled" and o.lifted is None]
    recall = recall_info(page, recalls, None) if recalls else None
    if recall is not None:  # which units: all of them, some lots, or some serials
        lots = recall["lots"]
        recall["lots_text"] = page.texts["recall_all"] if any(isinstance(o.scope, GtinScope) for o in recalls) else \
            chrome(page.brand, page.lang, page.locale)["pl"]("recall_lots", len(lots), lots=", ".join(lots)) if lots \
            else page.texts["recall_some"]
    view = {"gtin": gtin, "serial": None, "known": False, "recalled": bool(recalls)}
    return page.render("product.html", view=view, look=page.look(product.name), groups=groups, recall=recall)


# -- registration ----------------------------------------------------------------------------


def _needs_date(view: Mapping[str, Any]) -> bool:
    return not (view.get("warranty") or {}).get("start")


REGISTER_FIELDS = ("name", "contact", "purchase_date")
CLAIM_FIELDS = ("code", "name", "contact")
SAMPLE_CONTACT = "someone@example.com"  # checks one field of personal_data at a time


def person_checks(form: Mapping[str, str]) -> tuple[tuple[str, Any], ...]:
    return (("name", lambda: registration.personal_data(form.get("name", ""), SAMPLE_CONTACT)),
            ("contact", lambda: registration.personal_data("x", form.get("contact", ""))))


@_page
async def register(request: Request, services: Services) -> Response:
    gtin, serial = page_key(request, "/register")
    page = Page(request, services, gtin, serial)
    snap, view, _ = await _view(page, None)
    if not snap.known:
        return page.render("unit.html", 404, **unit_context(page, snap, view))
    if snap.recalled:  # a recalled unit is not to be registered: its page says what to do instead
        return page.redirect(page.base)
    if snap.unit.owner is not None:  # say so before any form: sign in, or take it over
        return page.render("already.html", 409, view=view, look=page.look(view["product"]["name"]))
    context = {"view": view, "look": page.look(view["product"]["name"]), "needs_date": _needs_date(view),
               "fields_shown": REGISTER_FIELDS}
    if request.method == "GET":
        return page.render("register.html", form={}, errors=None, form_key=secrets.token_urlsafe(16), **context)
    form: dict[str, str] = {}
    errors: dict[str, str] = {}
    try:
        form = await read_form(request)
        fields = {k: form.get(k, "") for k in REGISTER_FIELDS}
        if context["needs_date"] and not fields["purchase_date"]:
            errors["purchase_date"] = page.texts["err_purchase_date_required"]
        page.check(errors, "register", *person_checks(fields),
                   ("purchase_date", lambda: registration.check_purchase_date(fields["purchase_date"],
                                                                              services.today())))
        if not errors:
            answer = await registration.request_registration(services, gtin, serial, fields, page.channel(form),
                                                             page.lang)
    except problems.HANDLED as error:
        exc = problems.classify(error)
        errors.update(page.errors(exc, "register"))
        return page.render("register.html", exc.status, _retry(exc), form=form, errors=errors,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16), **context)
    if errors:
        return page.render("register.html", 422, form=form, errors=errors,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16), **context)
    return page.redirect(f"{page.base}/confirm?{urlencode({'p': answer['confirmation']})}")


@_page
async def confirm(request: Request, services: Services) -> Response:
    gtin, serial = page_key(request, "/confirm")
    page = Page(request, services, gtin, serial)
    if request.method == "GET":  # after the form, or the link from the message: confirm with a POST
        pending_id, code = request.query_params.get("p", ""), request.query_params.get("code", "")
        sent_to = None
        if not code and 8 <= len(pending_id) <= 40:
            pending = await services.store.get_pending(gtin, serial, pending_id)
            if pending is not None and pending.get("contact"):
                sent_to = registration.mask_contact(pending["contact"])
        return page.render("confirm.html", pending=pending_id, code=code, sent_to=sent_to, errors=None,
                           hours=int(registration.PENDING_TTL.total_seconds() // 3600),
                           form_key=secrets.token_urlsafe(16))
    form = {}
    try:
        form = await read_form(request)
        grant = await registration.confirm_registration(services, gtin, serial, form.get("p", ""), form.get("code", ""),
                                                   page.channel(form))
    except problems.HANDLED as error:
        exc = problems.classify(error)
        return page.render("confirm.html", exc.status, _retry(exc), pending=form.get("p", ""), code="", sent_to=None,
                           errors=page.errors(exc, "confirm"), fields_shown=("code",),
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16))
    return page.redirect(page.base, ("registered", grant.token_id), cookie=(grant.token, _seconds_left(grant.expires_at)))


# -- transfer ---------------------------------------------------------------------------------


@_page
async def transfer(request: Request, services: Services) -> Response:
    """The owner's two buttons: create a transfer code (shown once, here) or cancel it."""
    gtin, serial = page_key(request, "/transfer")
    page = Page(request, services, gtin, serial)
    claims = await page_claims(request, services, gtin, serial)
    if request.method == "GET":  # after the offer: the code, shown once, to this owner only
        return await _show_transfer_code(page, claims)
    form = await read_form(request)
    if claims is None or claims.role != "owner":
        raise Forbidden("only the owner may hand the product over; open the page on the owner's device", "transfer")
    check_csrf(services, claims, form)
    version = form.get("expected_version", "")
    expected = int(version) if version.isdigit() else None
    try:
        if form.get("action") == "cancel":
            await transfers.cancel_transfer(services, claims, gtin, serial, expected, page.channel(form))
            return page.redirect(page.base)
        channel = page.channel(form)
        await transfers.offer_transfer(services, claims, gtin, serial, expected, channel)
    except problems.HANDLED as error:
        exc = problems.classify(error)
        return page.message(exc.status, page.texts["error_title"], error_text(page.texts, exc, "transfer"))
    return page.redirect(page.base + "/transfer", ("transfer_code", claims.token_id),
                         notice_data=channel.idempotency_key)


async def _show_transfer_code(page: Page, claims: Claims | None) -> Response:
    """The code is derived from the offer's idempotency key, which only the signed notice
    carries: shown once after the offer, never again on Reload or Back."""
    signed = page.notice(claims.token_id) if claims is not None else None
    if claims is None or signed is None or signed[0] != "transfer_code":
        return page.redirect(page.base)
    snap = await reading.known_snapshot(page.services, page.gtin, page.serial or "")
    code = transfers.offer_code(page.services, page.gtin, page.serial or "", signed[1])
    offer = snap.unit.transfer_offer
    if offer is None or not hmac.compare_digest(offer.code_hash, channels.hash_code(code)):
        return page.redirect(page.base)
    return page.render("transfer_code.html", code=code, expires=i18n.format_datetime(offer.expires_at, page.locale))


@_page
async def claim(request: Request, services: Services) -> Response:
    gtin, serial = page_key(request, "/claim")
    page = Page(request, services, gtin, serial)
    snap, view, _ = await _view(page, None)
    if snap.recalled:  # nothing invites taking over a recalled unit: its page says what to do
        return page.redirect(page.base)
    context = {"view": view, "look": page.look(view["product"]["name"]), "fields_shown": CLAIM_FIELDS}
    if request.method == "GET":
        return page.render("claim.html", form={}, errors=None, form_key=secrets.token_urlsafe(16), **context)
    form: dict[str, str] = {}
    errors: dict[str, str] = {}
    try:
        form = await read_form(request)
        fields = {k: form.get(k, "") for k in CLAIM_FIELDS}
        page.check(errors, "claim", ("code", lambda: channels.hash_code(fields["code"])), *person_checks(fields))
        if not errors:
            grant = await transfers.claim_transfer(services, gtin, serial, fields, page.channel(form))
    except problems.HANDLED as error:
        exc = problems.classify(error)
        errors.update(page.errors(exc, "claim"))
        return page.render("claim.html", exc.status, _retry(exc), form={**form, "code": ""}, errors=errors,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16), **context)
    if errors:
        return page.render("claim.html", 422, form=form, errors=errors,
                           form_key=form.get("idempotency_key") or secrets.token_urlsafe(16), **context)
    return page.redirect(page.base, ("claimed", grant.token_id), cookie=(grant.token, _seconds_left(grant.expires_at)))


# -- technicians ----------------------------------------------------------------------------


def _seconds_left(expires_at: int) -> int:
    return max(1, int(expires_at - time.time()))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


@_page
async def service(request: Request, services: Services) -> Response:
    """Technicians (a valid token covering the unit): the service record and a visit form."""
    gtin, serial = page_key(request, "/service")
    page = Page(request, services, gtin, serial)
    claims = await page_claims(request, services, gtin, serial)
    if claims is not None and claims.role not in SERVICE_ROLES:
        claims = None
    form: dict[str, str] = {}
    if request.method == "POST":
        form = await read_form(request)
        action = form.get("action")
        if action == "login":
            return await _login(page, form)
        if claims is None:
            return page.render("service.html", 401, view=None, errors={"token": page.texts["err_token"]}, form={},
                               fields_shown=("token",))
        check_csrf(services, claims, form)
        if action == "logout":
            return page.redirect(page.base, clear_cookie=True)
        try:
            await _log_visit(page, claims, form)
        except problems.HANDLED as error:
            exc = problems.classify(error)
            snap, view, _ = await _view(page, claims)
            return page.render("service.html", exc.status, _retry(exc), view=view, errors=page.errors(exc, "service"),
                               form=form, csrf=csrf_value(services, claims), form_key=form.get("idempotency_key"),
                               notice=None, **_service_context(page, snap, view))
        return page.redirect(page.base + "/service", ("saved", claims.token_id))
    if claims is None:
        return page.render("service.html", view=None, errors=None, form={})
    snap, view, _ = await _view(page, claims)
    signed = page.notice(claims.token_id)
    notice = page.texts["saved"] if signed is not None and signed[0] == "saved" else None
    return page.render("service.html", view=view, errors=None, form={}, csrf=csrf_value(services, claims),
                       form_key=secrets.token_urlsafe(16), notice=notice, installer=claims.role == "installer",
                       **_service_context(page, snap, view))


def _service_context(page: Page, snap, view: Mapping[str, Any]) -> dict[str, Any]:
    return {"fields_shown": ("summary",),
            "recall": recall_info(page, _recalls(snap), snap.unit.lot)}


async def _login(page: Page, form: Mapping[str, str]) -> Response:
    services = page.services
    try:
        await channels.rate_check(services, "login", client_address(page.request))
    except problems.HANDLED as error:
        exc = problems.classify(error)
        return page.render("service.html", 429, _retry(exc), view=None, errors=page.errors(exc), form={},
                           fields_shown=("token",))
    token = form.get("token", "").strip()
    try:
        await services.revocations.fresh()
        claims = services.token_verifier.verify(token) if token else None
    except (TokenError, TwinError):  # a bad token or a store hiccup: not signed in
        claims = None
    if claims is None or claims.role not in SERVICE_ROLES or not claims.allows_unit(page.gtin, page.serial):
        return page.render("service.html", 401, view=None, errors={"token": page.texts["err_token"]}, form={},
                           fields_shown=("token",))
    return page.redirect(page.base + "/service", cookie=(token, _seconds_left(claims.expires)))


async def _log_visit(page: Page, claims: Claims, form: Mapping[str, str]) -> None:
    version = form.get("expected_version", "")
    expected = int(version) if version.isdigit() else None
    channel = page.channel(form)
    data: dict[str, Any] = {"summary": form.get("summary", "")}
    if form.get("ticket", "").strip():
        data["ticket"] = form["ticket"].strip()
    for field in ("parts", "fault_codes"):
        if _lines(form.get(field, "")):
            data[field] = _lines(form[field])
    if not data["summary"].strip():
        raise Invalid("required", "summary")
    appended = await events.record_event(page.services, claims, page.gtin, page.serial,
                                          {"type": "service", "reason": "service visit", "data": data},
                                          expected, channel)
    firmware = form.get("firmware", "").strip()
    if firmware:
        await events.record_event(page.services, claims, page.gtin, page.serial,
                                   {"type": "firmware", "reason": "updated during a service visit",
                                    "data": {"version": firmware}},
                                   appended.version, channel._replace(idempotency_key=channel.idempotency_key[:96] + "-fw"))


async def asset(request: Request) -> Response:
    """The theme's pictures (logo, favicon, product images) from its assets folder: only the
    names the theme itself uses, cached for a day."""
    brand = brand_of(request)
    path = brand.asset_file(request.path_params["name"])
    if path is None:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    return FileResponse(path, media_type=IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


FALLBACK_ICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" '
                 b'fill="#1b1b1b"/><path d="M9 9h4v14H9zm6 0h2v14h-2zm4 0h4v14h-4z" fill="#fff"/></svg>')


async def favicon(request: Request) -> Response:
    """/favicon.ico, which browsers ask for on their own: the theme's icon (any image type
    the browser reads), else a neutral one."""
    brand = brand_of(request)
    if brand.favicon and brand.favicon.startswith("https://"):
        return RedirectResponse(brand.favicon, 302)
    path = brand.asset_file(brand.favicon) if brand.favicon else None
    if path is not None:
        return FileResponse(path, media_type=IMAGE_TYPES.get(path.suffix.lower(), "image/x-icon"),
                            headers={"Cache-Control": "public, max-age=86400"})
    return Response(FALLBACK_ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


UNIT = "/u/01/{gtin}/21/{serial:path}"
routes: list[BaseRoute] = [
    Route(UNIT + "/register", register, methods=["GET", "POST"]),
    Route(UNIT + "/confirm", confirm, methods=["GET", "POST"]),
    Route(UNIT + "/transfer", transfer, methods=["GET", "POST"]),
    Route(UNIT + "/claim", claim, methods=["GET", "POST"]),
    Route(UNIT + "/service", service, methods=["GET", "POST"]),
    Route(UNIT, unit_page, methods=["GET"]),
    Route("/u/01/{gtin}", product_page, methods=["GET"]),
    Route("/u/assets/{name}", asset, methods=["GET", "HEAD"]),
    Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
]
