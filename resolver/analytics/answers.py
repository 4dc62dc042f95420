"""What the API (/v1/analytics) and the page (/u/analytics) share: who may ask, the
period and product asked about, the reports run off the event loop, the charts they draw,
and the live list of suspect units.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from resolver.access.tokens import Claims
from resolver.analytics import charts
from resolver.analytics.reports import DIMENSIONS, REPORTS, Analytics, Result
from resolver.errors import Forbidden, Invalid
from twin.overlays import SerialScope

if TYPE_CHECKING:
    from resolver.services import Services

ROLES = ("manufacturer", "admin")
DEFAULT_DAYS = 90


class Query(NamedTuple):
    since: datetime
    until: datetime
    gtin: str | None
    by: str


class Chart(NamedTuple):
    report: str
    title: str
    by: str = "role"


#: What the page draws, in order: each chart is one report (its CSV is the same report).
CHARTS = (
    Chart("registration-rate", "Registration rate by GTIN, lot and month of manufacture"),
    Chart("time-to-registration", "Time from manufacture to registration"),
    *(Chart("scans-per-day", f"Scans per day by {d.replace('_', ' ')}", d) for d in DIMENSIONS),
    Chart("activity", "Transfers, service visits and support sessions by month"),
    Chart("fault-codes", "Service events by fault code"),
    Chart("recall-reach", "Recall reach: share of covered units scanned since the recall"),
    Chart("funnel", "Minted, commissioned and first scanned, per batch"),
)


def _time(value: str | None, field: str, default: datetime) -> datetime:
    if not value:
        return default
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"expected an ISO 8601 date or time, got {value!r}", field) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def query_of(params: Mapping[str, str], claims: Claims, now: datetime | None = None) -> Query:
    """The period (default: the last 90 days), product and dimension asked about, checked
    against the token: a report over every product needs a token for every product."""
    now = now or datetime.now(UTC)
    until = _time(params.get("until"), "until", now)
    since = _time(params.get("since"), "since", until - timedelta(days=DEFAULT_DAYS))
    if since >= until:
        raise Invalid("must be before until", "since")
    gtin = params.get("gtin") or None
    if gtin is None and not claims.all_products and len(claims.gtins) == 1 and not claims.prefixes:
        gtin = next(iter(claims.gtins))  # a token for one product asks about that product
    if gtin is not None:
        if not (len(gtin) == 14 and gtin.isdigit()):
            raise Invalid("expected a 14-digit GTIN", "gtin")
        claims.require(ROLES, gtin)
    else:
        claims.require(ROLES)
        if not claims.all_products:
            raise Forbidden("name the GTIN to report on (the token does not cover every product)", "gtin")
    by = params.get("by") or "role"
    if by not in DIMENSIONS:
        raise Invalid(f"expected one of {', '.join(DIMENSIONS)}", "by")
    return Query(since, until, gtin, by)


def analytics_of(services: Services) -> Analytics:
    """The worker's DuckDB over settings.analytics_dir (opened on first use)."""
    found: Analytics | None = getattr(services, "_analytics", None)
    if found is None:
        assert services.settings.analytics_dir is not None  # Settings fills in its default
        found = Analytics(services.settings.analytics_dir)
        object.__setattr__(services, "_analytics", found)
    return found


async def report(services: Services, name: str, query: Query) -> Result:
    if name not in REPORTS:
        raise Invalid(f"unknown report; known: {', '.join(REPORTS)}, suspects", "report")
    analytics = analytics_of(services)
    return await asyncio.to_thread(analytics.run, name, since=query.since, until=query.until, gtin=query.gtin,
                                   by=query.by)


async def suspects(services: Services, query: Query) -> Result:
    """Units clone detection flagged (active and lifted), with the evidence, newest first."""
    store = services.store
    gtins = [query.gtin] if query.gtin else await store.gtins()
    rows: list[tuple[Any, ...]] = []
    for gtin in gtins:
        for o in await store.get_overlays(gtin, include_lifted=True):
            if o.kind != "suspect" or not query.since <= o.created_at < query.until:
                continue
            serial = o.scope.serial if isinstance(o.scope, SerialScope) else ""
            rule, _, evidence = o.reason.removeprefix("clone rule '").partition("': ")
            rows.append((gtin, serial, rule, evidence, o.created_at, o.lifted.at if o.lifted else None, o.id))
    rows.sort(key=lambda r: r[4], reverse=True)
    return Result(("gtin", "serial", "rule", "evidence", "flagged_at", "lifted_at", "overlay"), rows)


def chart_svg(chart: Chart, result: Result, ident: str) -> str:
    """The chart of one report's numbers."""
    rows, cols = result.rows, result.columns
    if chart.report == "scans-per-day":
        return charts.stacked_days(chart.title, [(str(r[0]), str(r[1]), float(r[2])) for r in rows], ident)
    if chart.report == "registration-rate":
        items = [(f"{r[0][-6:]} {r[1] or '-'} {r[2]}", float(r[5] or 0)) for r in rows]
    elif chart.report == "time-to-registration" or chart.report == "fault-codes":
        items = [(str(r[0]), float(r[1])) for r in rows]
    elif chart.report == "activity":
        items = [(f"{r[0]} {name}", float(r[i])) for r in rows for i, name in
                 ((1, "transfers"), (2, "service"), (3, "support"))]
    elif chart.report == "recall-reach":
        items = [(f"{r[3]} ({r[1][-6:]})", float(r[8] or 0)) for r in rows]
    else:  # funnel
        items = [(f"{r[2] or r[0][-12:]} {name}", float(r[i] or 0)) for r in rows
                 for i, name in ((4, "minted"), (5, "comm."), (6, "scanned"))]
    assert cols  # every report has columns
    return charts.bars(chart.title, items, ident)
