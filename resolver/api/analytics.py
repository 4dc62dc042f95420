"""Analytics API: the brand's reports as JSON or CSV, and the units flagged as likely clones.

=============================================  ============================================
``GET /v1/analytics``                          the reports there are
``GET /v1/analytics/{report}``                 one report: ``{"report", "columns", "rows"}``
``GET /v1/analytics/{report}.csv``             the same numbers as CSV (what each chart offers)
``GET /v1/analytics/suspects[.csv]``           units clone detection flagged, with evidence
=============================================  ============================================

Query: ``since``, ``until`` (ISO 8601; default the last 90 days), ``gtin``, ``by`` (for
scans-per-day: role, state, link_type, country, moment). Token: manufacturer or admin; a
report over every product needs a token for every product. Reports read the Parquet export
(``serialink analytics export``, settings.analytics_dir); suspects are read live.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resolver.analytics import answers
from resolver.analytics.reports import REPORTS
from resolver.api.common import claims, json_response
from resolver.services import services_of


async def analytics_index(request: Request) -> Response:
    claims(request, answers.ROLES)
    return json_response({"reports": [*REPORTS, "suspects"],
                          "csv": "append .csv to a report's path for its numbers as CSV"})


async def analytics_report(request: Request) -> Response:
    name = request.path_params["report"]
    as_csv = name.endswith(".csv")
    name = name.removesuffix(".csv")
    caller = claims(request, answers.ROLES)
    query = answers.query_of(request.query_params, caller)
    services = services_of(request)
    result = await (answers.suspects(services, query) if name == "suspects" else answers.report(services, name, query))
    if as_csv:
        return Response(result.as_csv(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}.csv"',
                                 "cache-control": "no-store"})
    return json_response({"report": name, "since": query.since.isoformat(), "until": query.until.isoformat(),
                          "gtin": query.gtin, **result.as_json()}, headers={"cache-control": "no-store"})


routes: list[BaseRoute] = [
    Route("/analytics", analytics_index, methods=["GET"]),
    Route("/analytics/{report}", analytics_report, methods=["GET"]),
]
