"""The brand's weekly questions as SQL on DuckDB over the exported Parquet files.

DuckDB reads Parquet in place (column pruning, row-group statistics, all cores; the
``day=`` directory is the UTC day of ``ts``, so a per-day report groups on it for free), so the
same files serve these reports and any engine the brand already runs. Each report is one
query returning a :class:`Result` (columns and rows) that the API serves as JSON or CSV
and the page draws. Periods filter on the scan's or event's time; ``gtin`` narrows to one
product.

What each answer counts (as far as the data exists):

- registration-rate: minted units of batches not voided, by GTIN, lot and month the batch
  was minted (the month of manufacture), and how many of them have a ``register`` event.
- time-to-registration: whole days from the batch's minting to the unit's first
  registration (a registration timed before the minting counts as day 0), in buckets.
- scans-per-day: scans by day and one of role, state, link_type, country, moment.
- activity: transfers (claims), service visits and support sessions (start_service) by month.
- fault-codes: service events by fault code read.
- recall-reach: per recall, the units it covers, how many of them were scanned since it
  started, and how many have a registered owner (Serialink sends no recall notices itself:
  ``owners_notified`` stays empty until a notifier reports them).
- funnel: per batch, minted → commissioned (a committed batch printed its labels; units
  commissioned one by one count otherwise) → first scanned (distinct serials scanned with
  the batch's lot, when the lot names one batch only), read from the export's per-period
  ``firstscans`` table for every period wholly inside the window and from raw scans for the
  rest.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from resolver.errors import Invalid

DIMENSIONS = ("role", "state", "link_type", "country", "moment")
#: Day buckets of time-to-registration: [lower, upper) days.
BUCKETS = ((0, 7), (7, 30), (30, 90), (90, 180), (180, 365), (365, 100_000))


class Result(NamedTuple):
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def as_json(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": [[_plain(v) for v in r] for r in self.rows]}

    def as_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([[_plain(v) if v is not None else "" for v in r] for r in self.rows])
        return buf.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


_EMPTY = {
    "scans": "SELECT NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS gtin, NULL::VARCHAR AS serial, NULL::VARCHAR AS lot, "
             "NULL::VARCHAR AS role, NULL::VARCHAR AS link_type, NULL::VARCHAR AS state, NULL::VARCHAR AS context, "
             "NULL::VARCHAR AS country, NULL::VARCHAR AS moment, NULL::DATE AS day WHERE false",
    "events": "SELECT NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS gtin, NULL::VARCHAR AS serial, NULL::INTEGER AS version, "
              "NULL::VARCHAR AS type, NULL::VARCHAR AS role, NULL::VARCHAR AS lot, NULL::VARCHAR AS batch_id, "
              "NULL::VARCHAR[] AS fault_codes, NULL::VARCHAR AS jurisdiction, NULL::DATE AS purchase_date, "
              "NULL::DATE AS day WHERE false",
    "batches": "SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS gtin, NULL::VARCHAR AS profile, NULL::BIGINT AS start, "
               "NULL::BIGINT AS count, NULL::VARCHAR AS status, NULL::VARCHAR AS kind, NULL::VARCHAR AS lot, "
               "NULL::DATE AS expiry, NULL::VARCHAR AS line, NULL::VARCHAR AS site, NULL::TIMESTAMPTZ AS created_at "
               "WHERE false",
    "overlays": "SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS gtin, NULL::VARCHAR AS kind, NULL::VARCHAR AS scope, "
                "NULL::VARCHAR AS lot, NULL::VARCHAR AS serial, NULL::VARCHAR AS first, NULL::VARCHAR AS last, "
                "NULL::VARCHAR AS profile, NULL::BIGINT AS counter_first, NULL::BIGINT AS counter_last, "
                "NULL::VARCHAR AS reason, NULL::TIMESTAMPTZ AS created_at, NULL::TIMESTAMPTZ AS lifted_at WHERE false",
}

# the scans of a period (and product): every report starts from these
_SCANS = "(SELECT * FROM scans WHERE ts >= $since AND ts < $until AND ($gtin IS NULL OR gtin = $gtin))"
_EVENTS = "(SELECT * FROM events WHERE ts >= $since AND ts < $until AND ($gtin IS NULL OR gtin = $gtin))"
_BATCHES = "(SELECT * FROM batches WHERE ($gtin IS NULL OR gtin = $gtin))"

SQL: dict[str, str] = {
    "registration-rate": f"""
        WITH reg AS (SELECT batch_id, count(DISTINCT serial) AS registered FROM {_EVENTS}
                     WHERE type = 'register' GROUP BY batch_id)
        SELECT b.gtin, coalesce(b.lot, '') AS lot, strftime(b.created_at AT TIME ZONE 'UTC', '%Y-%m') AS month,
               sum(b.count)::BIGINT AS units, sum(coalesce(r.registered, 0))::BIGINT AS registered,
               round(sum(coalesce(r.registered, 0)) / sum(b.count), 6) AS rate
        FROM {_BATCHES} b LEFT JOIN reg r ON r.batch_id = b.id
        WHERE b.status <> 'voided'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    "time-to-registration": f"""
        WITH first_reg AS (SELECT gtin, serial, batch_id, min(ts) AS ts FROM {_EVENTS}
                           WHERE type = 'register' GROUP BY 1, 2, 3),
             days AS (SELECT greatest(0, floor((epoch(f.ts) - epoch(b.created_at)) / 86400)) AS d
                      FROM first_reg f JOIN batches b ON b.id = f.batch_id),
             buckets(lo, hi) AS (VALUES {", ".join(f"({lo}, {hi})" for lo, hi in BUCKETS)})
        SELECT CASE WHEN hi >= 100000 THEN lo || '+ days' ELSE lo || '-' || (hi - 1) || ' days' END AS days,
               count(d)::BIGINT AS units
        FROM buckets LEFT JOIN days ON d >= lo AND d < hi
        GROUP BY lo, hi ORDER BY lo""",
    "scans-per-day": f"""
        SELECT day, coalesce({{by}}, '(none)') AS {{by}},
               count(*)::BIGINT AS scans
        FROM {_SCANS} GROUP BY 1, 2 ORDER BY 1, 2""",
    "activity": f"""
        SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m') AS month,
               count(*) FILTER (WHERE type = 'transfer_claim')::BIGINT AS transfers,
               count(*) FILTER (WHERE type = 'service')::BIGINT AS service_visits,
               count(*) FILTER (WHERE type = 'start_service')::BIGINT AS support_sessions
        FROM {_EVENTS} WHERE type IN ('transfer_claim', 'service', 'start_service')
        GROUP BY 1 ORDER BY 1""",
    "fault-codes": f"""
        SELECT code AS fault_code, count(*)::BIGINT AS service_events, count(DISTINCT gtin || '/' || serial)::BIGINT AS units
        FROM (SELECT gtin, serial, unnest(fault_codes) AS code FROM {_EVENTS} WHERE type = 'service')
        GROUP BY 1 ORDER BY 2 DESC, 1""",
    "recall-reach": """
        WITH recalls AS (SELECT * FROM overlays WHERE kind = 'recalled' AND ($gtin IS NULL OR gtin = $gtin)),
             covered AS (
                SELECT r.id, CASE r.scope
                    WHEN 'gtin' THEN (SELECT sum(count) FROM batches b WHERE b.gtin = r.gtin AND b.status <> 'voided')
                    WHEN 'lot' THEN (SELECT sum(count) FROM batches b WHERE b.gtin = r.gtin AND b.lot = r.lot
                                     AND b.status <> 'voided')
                    WHEN 'serial' THEN 1
                    WHEN 'counters' THEN r.counter_last - r.counter_first + 1
                    WHEN 'serials' THEN CASE WHEN regexp_full_match(r.first, '[1-9][0-9]{0,17}')
                                              AND regexp_full_match(r.last, '[1-9][0-9]{0,17}')
                                         THEN r.last::BIGINT - r.first::BIGINT + 1 END
                    END AS units
                FROM recalls r),
             hits AS (
                SELECT r.id, s.gtin, s.serial, s.ts FROM recalls r JOIN scans s ON s.gtin = r.gtin
                WHERE s.serial IS NOT NULL AND s.ts >= r.created_at AND (r.lifted_at IS NULL OR s.ts < r.lifted_at)
                  AND CASE r.scope WHEN 'gtin' THEN true WHEN 'lot' THEN s.lot = r.lot
                        WHEN 'serial' THEN s.serial = r.serial
                        WHEN 'serials' THEN (length(s.serial) > length(r.first)
                                             OR (length(s.serial) = length(r.first) AND s.serial >= r.first))
                                        AND (length(s.serial) < length(r.last)
                                             OR (length(s.serial) = length(r.last) AND s.serial <= r.last))
                        ELSE false END),
             owners AS (
                SELECT r.id, count(DISTINCT e.gtin || '/' || e.serial) AS n FROM recalls r JOIN events e ON e.gtin = r.gtin
                WHERE e.type IN ('register', 'transfer_claim')
                  AND CASE r.scope WHEN 'gtin' THEN true WHEN 'lot' THEN e.lot = r.lot
                        WHEN 'serial' THEN e.serial = r.serial ELSE false END
                GROUP BY 1)
        SELECT r.id AS recall, r.gtin, r.scope, coalesce(r.lot, r.serial, r.first || '..' || r.last,
               r.profile || ':' || r.counter_first || '..' || r.counter_last, '') AS covers,
               r.created_at AS started, r.lifted_at AS lifted, c.units::BIGINT AS units,
               count(DISTINCT h.serial)::BIGINT AS units_scanned_since,
               round(count(DISTINCT h.serial) / nullif(c.units, 0), 6) AS share_scanned,
               coalesce(o.n, 0)::BIGINT AS owners_registered, NULL::BIGINT AS owners_notified
        FROM recalls r JOIN covered c ON c.id = r.id LEFT JOIN hits h ON h.id = r.id LEFT JOIN owners o ON o.id = r.id
        GROUP BY r.id, r.gtin, r.scope, r.lot, r.serial, r.first, r.last, r.profile, r.counter_first, r.counter_last,
                 r.created_at, r.lifted_at, c.units, o.n
        ORDER BY r.created_at, r.id""",
    "funnel": f"""
        WITH lots AS (SELECT gtin, lot, count(*) AS n FROM batches WHERE lot IS NOT NULL GROUP BY 1, 2),
             scanned AS (SELECT gtin, lot, count(*) AS n FROM ({{scanned}}) GROUP BY 1, 2),
             commissioned AS (SELECT batch_id, count(DISTINCT serial) AS n FROM events
                              WHERE type = 'commission' GROUP BY 1)
        SELECT b.id AS batch, b.gtin, coalesce(b.lot, '') AS lot, b.status, b.count::BIGINT AS minted,
               (CASE WHEN b.status = 'committed' THEN b.count ELSE coalesce(c.n, 0) END)::BIGINT AS commissioned,
               (CASE WHEN l.n = 1 THEN coalesce(s.n, 0) END)::BIGINT AS first_scanned
        FROM {_BATCHES} b LEFT JOIN lots l ON l.gtin = b.gtin AND l.lot = b.lot
             LEFT JOIN scanned s ON s.gtin = b.gtin AND s.lot = b.lot
             LEFT JOIN commissioned c ON c.batch_id = b.id
        ORDER BY b.gtin, b.created_at, b.id""",
}
REPORTS = tuple(SQL)


class Analytics:
    """DuckDB over one export directory. Thread-safe: each query gets its own cursor."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._db = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        self._views: tuple[bool, ...] | None = None

    def _define_views(self) -> None:
        present = tuple(self._source(name) is not None for name in _EMPTY)
        if present == self._views:
            return
        for name in _EMPTY:
            source = self._source(name)
            body = f"SELECT * FROM {source}" if source else _EMPTY[name]
            self._db.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
        self._views = present

    def _source(self, name: str) -> str | None:
        if name in ("scans", "events"):
            if not any((self.root / name).glob("day=*/*.parquet")):
                return None
            glob = str(self.root / name / "day=*" / "*.parquet").replace("'", "''")
            return f"read_parquet('{glob}', hive_partitioning = true, hive_types = {{'day': DATE}})"
        path = self.root / f"{name}.parquet"
        return f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')" if path.exists() else None

    def run(self, report: str, *, since: datetime, until: datetime, gtin: str | None = None,
            by: str = "role") -> Result:
        """One report over [since, until) (scan or event time), optionally for one GTIN."""
        sql = SQL.get(report)
        if sql is None:
            raise Invalid(f"unknown report; known: {', '.join(REPORTS)}", "report")
        if report == "scans-per-day":
            if by not in DIMENSIONS:
                raise Invalid(f"expected one of {', '.join(DIMENSIONS)}, got {by!r}", "by")
            sql = sql.format(by=by)
        if report == "funnel":
            sql = sql.format(scanned=self._scanned_units(since, until))
        params = {k: v for k, v in {"since": since, "until": until, "gtin": gtin}.items() if f"${k}" in sql}
        with self._lock:
            self._define_views()
            cursor = self._db.cursor()
        try:
            rel = cursor.execute(sql, params)
            columns = tuple(d[0] for d in rel.description or ())
            return Result(columns, [tuple(r) for r in rel.fetchall()])
        finally:
            cursor.close()

    def _scanned_units(self, since: datetime, until: datetime) -> str:
        """SQL for the distinct (gtin, lot, serial) scanned in [since, until): an exported
        period wholly inside comes from its ``firstscans`` file (one row per unit scanned),
        the rest from the raw scan files that overlap the window, filtered by time. Same set
        as filtering every raw scan, without hashing every scan's serial; one period's file
        alone is distinct already."""
        lo_ms, hi_ms = _ms(since), _ms(until)
        covered: list[tuple[int, int, str]] = []
        # widest first (a month's file before its days'), never two that overlap
        for a, b, path in sorted(_parts(self.root / "firstscans", "part-*.parquet"), key=lambda f: f[0] - f[1]):
            if lo_ms <= a and b <= hi_ms and all(b <= c or d <= a for c, d, _ in covered):
                covered.append((a, b, path))
        raw = [path for a, b, path in _parts(self.root / "scans", "day=*/part-*.parquet")
               if a < hi_ms and b > lo_ms and not any(c <= a and b <= d for c, d, _ in covered)]
        gtin = "($gtin IS NULL OR gtin = $gtin)"
        selects = []
        if covered:
            selects.append(f"SELECT gtin, lot, serial FROM read_parquet({_list([p for _, _, p in covered])}) WHERE {gtin}")
        if raw:
            selects.append(f"SELECT gtin, lot, serial FROM read_parquet({_list(raw)}) WHERE {gtin} "
                           "AND ts >= $since AND ts < $until AND serial IS NOT NULL AND lot IS NOT NULL")
        if not selects:
            return "SELECT NULL::VARCHAR AS gtin, NULL::VARCHAR AS lot, NULL::VARCHAR AS serial WHERE false"
        if len(covered) == 1 and not raw:
            return selects[0]
        return f"SELECT DISTINCT gtin, lot, serial FROM ({' UNION ALL '.join(selects)})"

    def close(self) -> None:
        self._db.close()


def _ms(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000


def _parts(root: Path, pattern: str) -> list[tuple[int, int, str]]:
    """Exported files named ``part-<from ms>-<to ms>.parquet`` under root: (from, to, path)."""
    found = []
    for path in sorted(root.glob(pattern)):
        _, a, b = path.stem.split("-")
        found.append((int(a), int(b), str(path)))
    return found


def _list(paths: Sequence[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def csv_of(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return Result(tuple(columns), [tuple(r) for r in rows]).as_csv()
