"""The brand's analytics page: every report as a server-rendered SVG chart with its CSV.

``GET /u/analytics?since=…&until=…&gtin=…`` with a manufacturer or admin token (the
``serialink_token`` cookie or ``Authorization: Bearer``). No script, no external request:
the charts are inline SVG (resolver.analytics.charts), each with a link to the same
numbers as CSV from /v1/analytics, and the units clone detection flagged are listed with
their evidence.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from resolver.access.tokens import token_from_headers
from resolver.analytics import answers
from resolver.errors import Unauthenticated
from resolver.pages.routes import ENV, SECURITY_HEADERS, _page
from resolver.services import Services


async def analytics_page(request: Request, services: Services) -> Response:
    token = token_from_headers(request.headers.get("authorization"), request.headers.get("cookie"))
    if token is None:
        raise Unauthenticated("sign in with a manufacturer token to see the analytics")
    claims = services.token_verifier.verify(token)
    query = answers.query_of(request.query_params, claims)
    params = {"since": query.since.isoformat(), "until": query.until.isoformat(),
              **({"gtin": query.gtin} if query.gtin else {})}
    charts = []
    for i, chart in enumerate(answers.CHARTS):
        result = await answers.report(services, chart.report, query._replace(by=chart.by))
        extra = {"by": chart.by} if chart.report == "scans-per-day" else {}
        charts.append({"id": f"c{i}", "title": chart.title, "svg": answers.chart_svg(chart, result, f"c{i}"),
                       "csv": f"/v1/analytics/{chart.report}.csv?{urlencode({**params, **extra})}",
                       "rows": len(result.rows)})
    suspects = await answers.suspects(services, query)
    html = ENV.get_template("analytics.html").render(
        lang="en", charts=charts, query=query, suspects=suspects.rows,
        suspects_csv=f"/v1/analytics/suspects.csv?{urlencode(params)}")
    return HTMLResponse(html, 200, SECURITY_HEADERS)


routes: list[BaseRoute] = [Route("/u/analytics", _page(analytics_page), methods=["GET"])]
