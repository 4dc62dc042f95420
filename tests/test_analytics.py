"""Analytics: the Parquet export round-trips the store, every report agrees with a
brute-force computation on small data, clone rules fire exactly where their thresholds
say (scan times fixed: the detector reads no clock), the API answers JSON and CSV to the
manufacturer only, and a flagged unit is routed by a ``suspect`` rule.
"""

from __future__ import annotations

import collections
import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.analytics.clones import CloneDetector, load_rules, parse_rules
from resolver.analytics.export import _chunk_arrays, export, uncovered
from resolver.analytics.reports import BUCKETS, REPORTS, Analytics
from resolver.errors import Invalid
from twin.errors import CorruptRecord
from twin.events import Actor, make_event
from twin.overlays import LotScope, SerialRange, SerialScope
from twin.ownership import PersonalData
from twin.scans import ScanEvent
from twin.unit import unit_from_batch

GTIN = "09506000134352"
GTIN2 = "09506000134369"
DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
QA = Actor("manufacturer", "qa@example.com")
ROLES = ("consumer", "consumer", "consumer", "owner", "technician")
STATES = ("sold", "registered", "commissioned", "unknown", None)
COUNTRIES = ("DE", "FR", "BR", None)


def synthetic_scans(n: int, seed: int, serials: list[str] | None = None, lots: tuple[str, ...] = ("L1", "L2"),
                    start: int = T0, days: int = 3) -> list[ScanEvent]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        gtin = rnd.choice((GTIN, GTIN2))
        serial = rnd.choice(serials) if serials else f"S{rnd.randrange(200)}"
        out.append(ScanEvent(start + rnd.randrange(days * DAY), gtin, serial, rnd.choice(lots), rnd.choice(ROLES),
                             rnd.choice(("gs1:pip", "gs1:registerProduct", None)), rnd.choice(STATES), None,
                             rnd.choice(COUNTRIES)))
    out.sort(key=lambda s: s.at_ms)
    return out


def read_dir(root: Path, table: str) -> list[dict[str, Any]]:
    files = sorted((root / table).glob("day=*/*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


# -- export ---------------------------------------------------------------------------------


def test_uncovered_periods() -> None:
    assert uncovered(0, 10, []) == [(0, 10)]
    assert uncovered(0, 10, [(0, 10)]) == []
    assert uncovered(0, 10, [(2, 3), (5, 7)]) == [(0, 2), (3, 5), (7, 10)]
    assert uncovered(5, 5, []) == []


@pytest.mark.anyio
async def test_export_round_trips_the_store_append_only_and_idempotent(store: Any, tmp_path: Path) -> None:
    scans = synthetic_scans(3000, seed=1)
    for i in range(0, len(scans), 700):
        await store.append_scans(scans[i:i + 700])
    await store.append_event(GTIN, "U1", make_event("commission", QA, "line", lot="L1", at=datetime.fromtimestamp(T0 / 1000 + 60, UTC)))
    owner_event = make_event("register", Actor("owner", "o_ana12345"), "bought it", owner="o_ana12345", purchase_date="2026-01-01",
                             at=datetime.fromtimestamp(T0 / 1000 + DAY / 1000, UTC))
    await store.append_event(GTIN, "U1", owner_event, personal=PersonalData("Ana Secretname", "ana@example.com"))
    await store.append_event(GTIN, "U1", make_event("service", Actor("technician", "tech@example.com"), "visit",
                                                    at=datetime.fromtimestamp(T0 / 1000 + 2 * DAY / 1000, UTC),
                                                    summary="boiler serviced", fault_codes=["F22", "E10"]))
    out = tmp_path / "out"

    first = await export(store, out, T0, T0 + 2 * DAY)
    expected = [s for s in scans if s.at_ms < T0 + 2 * DAY]
    assert first.scans == len(expected) and first.events == 2 and first.periods == [(T0, T0 + 2 * DAY)]
    assert sorted(p.name for p in (out / "scans").iterdir()) == ["day=2026-01-01", "day=2026-01-02"]
    rows = read_dir(out, "scans")
    # the same scans, field by field (counts and sums match the store)
    got = sorted((int(r["ts"].timestamp() * 1000), r["gtin"], r["serial"], r["lot"], r["role"], r["link_type"],
                  r["state"], r["context"], r["country"]) for r in rows)
    assert got == sorted(tuple(s) for s in expected)
    assert sum(r[0] for r in got) == sum(s.at_ms for s in expected)
    assert all(r["moment"] is None for r in rows)
    for f in (out / "scans").glob("day=*/*.parquet"):  # each file holds its own day only
        day = f.parent.name.removeprefix("day=")
        assert {r["ts"].date().isoformat() for r in pq.read_table(f).to_pylist()} == {day}

    # idempotent: the same period again writes nothing; files are never rewritten
    before = {p: p.stat().st_mtime_ns for p in out.rglob("day=*/*.parquet")}
    again = await export(store, out, T0, T0 + 2 * DAY)
    assert (again.scans, again.events, again.files, again.periods) == (0, 0, 0, [])
    # append-only: an overlapping period exports only its new part, into new files
    later = await export(store, out, T0 + DAY, T0 + 3 * DAY)
    assert later.periods == [(T0 + 2 * DAY, T0 + 3 * DAY)] and later.events == 1
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert len(read_dir(out, "scans")) == len(scans)
    counts = collections.Counter(r["country"] for r in read_dir(out, "scans"))
    assert counts == collections.Counter(s.country for s in scans)

    events = read_dir(out, "events")
    assert [(e["type"], e["role"], e["version"]) for e in sorted(events, key=lambda e: e["version"])] == [
        ("commission", "manufacturer", 1), ("register", "owner", 2), ("service", "technician", 3)]
    assert [e["fault_codes"] for e in events if e["type"] == "service"] == [["F22", "E10"]]
    assert all(e["lot"] == "L1" for e in events)
    # no personal data: no principal, owner id, name, contact or free text anywhere in the files
    blob = b"".join(p.read_bytes() for p in out.rglob("*.parquet"))
    for secret in (b"Secretname", b"ana@example.com", b"o_ana12345", b"tech@example.com", b"qa@example.com",
                   b"boiler serviced", b"bought it"):
        assert secret not in blob


# -- reports against brute force ---------------------------------------------------------------


@pytest.fixture
async def dataset(tmp_path: Path) -> Any:
    """A small brand: batches with lots, units registered and serviced, recalls, scans."""
    from twin.store import open_store

    async with await open_store(f"sqlite:///{tmp_path / 'twin.db'}") as store:
        b1 = await store.allocate_range(GTIN, "default", 40, "r1", "d1", actor=QA, lot="L1")
        b2 = await store.allocate_range(GTIN, "default", 30, "r2", "d2", actor=QA, lot="L2")
        b3 = await store.allocate_range(GTIN2, "default", 20, "r3", "d3", actor=QA, lot="L9")
        await store.set_batch_status(b1.id, "committed", QA, "printed")
        batches = [await store.get_batch(b.id) for b in (b1, b2, b3)]
        rnd = random.Random(7)
        now = datetime.now(UTC).replace(microsecond=0)
        for batch in batches:
            for i in range(batch.count):
                serial = f"{batch.lot}-{i}"
                origin = unit_from_batch(batch.gtin, serial, batch)
                if rnd.random() < 0.5:
                    continue
                at = now + timedelta(days=rnd.choice((0, 3, 10, 45, 100, 200, 400)))
                ev = make_event("register", Actor("owner", f"o_owner{i:04d}"), "r", owner=f"o_owner{i:04d}",
                                purchase_date="2026-01-01", at=at)
                await store.append_event(batch.gtin, serial, ev, origin=origin)
                if rnd.random() < 0.5:
                    codes = rnd.sample(["F1", "F2", "E7"], rnd.randrange(0, 3))
                    ev = make_event("service", Actor("technician", "t"), "s", summary="x", fault_codes=codes,
                                    at=at + timedelta(days=1))
                    await store.append_event(batch.gtin, serial, ev)
                if rnd.random() < 0.2:
                    ev = make_event("start_service", Actor("technician", "t"), "s", at=at + timedelta(days=2))
                    await store.append_event(batch.gtin, serial, ev)
        recall_lot = await store.put_overlay(GTIN, "recalled", LotScope("L2"), QA, "water ingress")
        recall_one = await store.put_overlay(GTIN, "recalled", SerialScope("L1-3"), QA, "bad part")
        recall_range = await store.put_overlay(GTIN2, "recalled", SerialRange("L9-1", "L9-5"), QA, "range")
        recalls = [recall_lot, recall_one, recall_range]
        start = int(now.timestamp() * 1000) - DAY
        scans = []
        for _ in range(2500):
            batch = rnd.choice(batches)
            serial = f"{batch.lot}-{rnd.randrange(batch.count)}"
            scans.append(ScanEvent(start + rnd.randrange(4 * DAY), batch.gtin, serial, batch.lot, rnd.choice(ROLES),
                                   rnd.choice(("gs1:pip", None)), rnd.choice(STATES), None, rnd.choice(COUNTRIES)))
        await store.append_scans(scans)
        out = tmp_path / "out"
        await export(store, out, 0, start + 500 * DAY)
        events = [(g, s, i + 1, e) for g, s in [k for ks in [x async for x in store.unit_keys()] for k in ks]
                  for i, e in enumerate(await store.get_events(g, s))]
        yield {"out": out, "batches": batches, "scans": scans, "events": events, "recalls": recalls,
               "since": datetime(2000, 1, 1, tzinfo=UTC), "until": datetime.fromtimestamp(start / 1000 + 500 * 86400, UTC)}


def _lot_of(serial: str) -> str:
    return serial.split("-")[0]


@pytest.mark.anyio
async def test_every_report_matches_a_brute_force_count(dataset: Any) -> None:
    d = dataset
    analytics = Analytics(d["out"])
    run = lambda name, **kw: analytics.run(name, since=d["since"], until=d["until"], **kw)  # noqa: E731
    batches, scans, events = d["batches"], d["scans"], d["events"]
    by_id = {b.id: b for b in batches}
    batch_of = {(b.gtin, b.lot): b for b in batches}

    # registration rate by GTIN, lot, month of manufacture
    registered = collections.Counter(batch_of[(g, _lot_of(s))].id for g, s, _, e in events if e.type == "register")
    want = sorted((b.gtin, b.lot, b.created_at.strftime("%Y-%m"), b.count, registered[b.id],
                   round(registered[b.id] / b.count, 6)) for b in batches)
    assert run("registration-rate").rows == want

    # time from manufacture to registration, in buckets
    days = [max(0, (e.at - batch_of[(g, _lot_of(s))].created_at).days) for g, s, _, e in events if e.type == "register"]
    result = run("time-to-registration").rows
    assert [n for _, n in result] == [sum(lo <= x < hi for x in days) for lo, hi in BUCKETS]
    assert sum(n for _, n in result) == len(days) > 0

    # scans per day by each dimension
    for by, index in (("role", 4), ("state", 6), ("link_type", 5), ("country", 8)):
        counts = collections.Counter((datetime.fromtimestamp(s.at_ms / 1000, UTC).date(), s[index] or "(none)")
                                     for s in scans)
        assert run("scans-per-day", by=by).rows == sorted((k[0], k[1], v) for k, v in counts.items())
    assert {r[1] for r in run("scans-per-day", by="moment").rows} == {"(none)"}

    # activity by month, fault codes
    months = collections.defaultdict(lambda: [0, 0, 0])
    for _, _, _, e in events:
        if e.type in ("transfer_claim", "service", "start_service"):
            months[e.at.strftime("%Y-%m")][("transfer_claim", "service", "start_service").index(e.type)] += 1
    assert run("activity").rows == sorted((m, *v) for m, v in months.items())
    faults = collections.Counter(c for _, _, _, e in events if e.type == "service" for c in e.data.get("fault_codes", []))
    units = {c: len({(g, s) for g, s, _, e in events if e.type == "service" and c in e.data.get("fault_codes", [])})
             for c in faults}
    assert run("fault-codes").rows == sorted(((c, n, units[c]) for c, n in faults.items()), key=lambda r: (-r[1], r[0]))

    # recall reach: covered units, distinct units scanned since, registered owners
    def covers(o, gtin, serial, lot):
        if gtin != o.gtin:
            return False
        sc = o.scope
        if isinstance(sc, LotScope):
            return lot == sc.lot
        if isinstance(sc, SerialScope):
            return serial == sc.serial
        key = (len(serial), serial)
        return (len(sc.first), sc.first) <= key <= (len(sc.last), sc.last)

    reach = {r[0]: r for r in run("recall-reach").rows}
    for o in d["recalls"]:
        since_ms = o.created_at.timestamp() * 1000
        scanned = {s.serial for s in scans if s.at_ms >= since_ms and covers(o, s.gtin, s.serial, s.lot)}
        owners = {(g, s) for g, s, _, e in events if e.type == "register" and covers(o, g, s, _lot_of(s))}
        row = reach[o.id]
        units = {"lot": by_id[batch_of[(GTIN, "L2")].id].count if isinstance(o.scope, LotScope) else None}.get("lot")
        if isinstance(o.scope, SerialScope):
            units = 1
        if isinstance(o.scope, SerialRange):
            units = None  # not numeric serials: the count of a range is unknown
        assert row[6] == units
        assert row[7] == len(scanned)
        assert row[9] == (len(owners) if not isinstance(o.scope, SerialRange) else 0)
        assert row[10] is None  # no recall notices are sent (yet)

    # funnel per batch
    scanned_by_lot = collections.defaultdict(set)
    for s in scans:
        scanned_by_lot[(s.gtin, s.lot)].add(s.serial)
    want = [(b.id, b.gtin, b.lot, str(b.status), b.count, b.count if str(b.status) == "committed" else 0,
             len(scanned_by_lot[(b.gtin, b.lot)])) for b in sorted(batches, key=lambda b: (b.gtin, b.created_at, b.id))]
    assert run("funnel").rows == want

    # one GTIN only
    only = run("scans-per-day", gtin=GTIN2, by="role").rows
    assert sum(r[2] for r in only) == sum(1 for s in scans if s.gtin == GTIN2)
    assert set(REPORTS) == {"registration-rate", "time-to-registration", "scans-per-day", "activity", "fault-codes",
                            "recall-reach", "funnel"}
    with pytest.raises(Invalid):
        run("scans-per-day", by="owner")


@pytest.mark.anyio
async def test_firstscans_round_trip_and_the_funnel_agrees_over_any_window(store: Any, tmp_path: Path) -> None:
    """The derived per-period table holds each scanned unit once with its first scan, and
    the funnel read from it (whole periods) plus raw scans (the rest of a window) equals
    brute force, and equals the funnel of the raw scans alone."""
    scans = synthetic_scans(2500, seed=5, days=4)
    scans.append(ScanEvent(T0 + 5, GTIN, None, "L1", "consumer", None, "unknown", None, None))  # no serial
    scans.append(ScanEvent(T0 + 6, GTIN, "S9", None, "consumer", None, "unknown", None, None))  # no lot
    scans.sort(key=lambda s: s.at_ms)
    for i in range(0, len(scans), 600):
        await store.append_scans(scans[i:i + 600])
    for g in (GTIN, GTIN2):
        for lot in ("L1", "L2"):
            batch = await store.allocate_range(g, "default", 300, f"r{g}{lot}", "d", actor=QA, lot=lot)
            if lot == "L1":
                await store.set_batch_status(batch.id, "committed", QA, "printed")
    batches = sorted([b for g in (GTIN, GTIN2) for b in await store.list_batches(g)],
                     key=lambda b: (b.gtin, b.created_at, b.id))
    out = tmp_path / "out"
    periods = [(T0, T0 + DAY + DAY // 3), (T0 + DAY + DAY // 3, T0 + 3 * DAY), (T0 + 3 * DAY, T0 + 4 * DAY)]
    for a, b in periods:  # uneven periods, one crossing a day boundary
        await export(store, out, a, b)

    files = sorted((out / "firstscans").glob("part-*.parquet"))
    assert [tuple(int(x) for x in f.stem.split("-")[1:]) for f in files] == periods
    for f, (a, b) in zip(files, periods, strict=True):
        first: dict[tuple[str, str, str], int] = {}
        for s in scans:
            if a <= s.at_ms < b and s.serial is not None and s.lot is not None:
                key = (s.gtin, s.lot, s.serial)
                first[key] = min(first.get(key, s.at_ms), s.at_ms)
        rows = pq.read_table(f).to_pylist()
        assert len(rows) == len(first) > 0
        assert {(r["gtin"], r["lot"], r["serial"]): int(r["first"].timestamp() * 1000) for r in rows} == first

    def brute(lo: int, hi: int, gtin: str | None) -> list[tuple[Any, ...]]:
        seen = collections.defaultdict(set)
        for s in scans:
            if lo <= s.at_ms < hi and s.serial is not None and s.lot is not None and gtin in (None, s.gtin):
                seen[(s.gtin, s.lot)].add(s.serial)
        return [(b.id, b.gtin, b.lot, str(b.status), b.count, b.count if str(b.status) == "committed" else 0,
                 len(seen[(b.gtin, b.lot)])) for b in batches if gtin in (None, b.gtin)]

    at = lambda ms: datetime.fromtimestamp(ms / 1000, UTC)  # noqa: E731
    windows = [(T0 - DAY, T0 + 5 * DAY), (T0 + DAY + DAY // 3, T0 + 3 * DAY), (T0 + DAY // 2, T0 + 2 * DAY + 5),
               (T0 + 3 * DAY + 1, T0 + 4 * DAY), (T0 + DAY, T0 + DAY), (T0 + 7 * DAY, T0 + 8 * DAY)]
    analytics = Analytics(out)
    answers = {}
    for lo, hi in windows:
        for gtin in (None, GTIN2):
            got = analytics.run("funnel", since=at(lo), until=at(hi), gtin=gtin).rows
            assert got == brute(lo, hi, gtin), (lo - T0, hi - T0, gtin)
            answers[(lo, hi, gtin)] = got
    assert any(r[6] for r in answers[(T0 - DAY, T0 + 5 * DAY, None)])
    assert "firstscans" in analytics._scanned_units(at(T0 - DAY), at(T0 + 5 * DAY))
    assert "scans" not in analytics._scanned_units(at(T0 - DAY), at(T0 + 5 * DAY)).replace("firstscans", "")
    # a window that ends 0.5 ms into a period cannot use that period's table
    assert "day=" in analytics._scanned_units(at(T0 - DAY), datetime.fromtimestamp((T0 + 3 * DAY) / 1000 + 0.0005, UTC))

    # an export made before the derived table existed: the raw scans give the same answers
    for f in files:
        f.unlink()
    raw = Analytics(out)
    for lo, hi in windows:
        for gtin in (None, GTIN2):
            assert raw.run("funnel", since=at(lo), until=at(hi), gtin=gtin).rows == answers[(lo, hi, gtin)]


@pytest.mark.anyio
async def test_a_month_exported_in_periods_gets_one_rolled_up_firstscans_file(store: Any, tmp_path: Path) -> None:
    jan, feb = T0, T0 + 31 * DAY  # 2026-01-01, 2026-02-01
    scans = synthetic_scans(1500, seed=8, start=jan, days=33)
    for i in range(0, len(scans), 500):
        await store.append_scans(scans[i:i + 500])
    for g in (GTIN, GTIN2):
        for lot in ("L1", "L2"):
            await store.allocate_range(g, "default", 300, f"r{g}{lot}", "d", actor=QA, lot=lot)
    batches = sorted([b for g in (GTIN, GTIN2) for b in await store.list_batches(g)], key=lambda b: (b.gtin, b.created_at, b.id))
    out = tmp_path / "out"
    await export(store, out, jan, jan + 10 * DAY)
    assert not (out / "firstscans" / f"part-{jan:013d}-{feb:013d}.parquet").exists()  # January not covered yet
    await export(store, out, jan + 10 * DAY, jan + 20 * DAY)
    last = await export(store, out, jan + 20 * DAY, feb + DAY)  # crosses into February: January is not whole
    assert last.periods == [(jan + 20 * DAY, feb + DAY)]
    assert not (out / "firstscans" / f"part-{jan:013d}-{feb:013d}.parquet").exists()

    out2 = tmp_path / "out2"
    for a, b in ((jan, jan + 10 * DAY), (jan + 10 * DAY, jan + 20 * DAY), (jan + 20 * DAY, feb), (feb, feb + DAY)):
        await export(store, out2, a, b)
    month = out2 / "firstscans" / f"part-{jan:013d}-{feb:013d}.parquet"
    first: dict[tuple[str, str, str], int] = {}
    for sc in scans:
        if jan <= sc.at_ms < feb:
            first[(sc.gtin, sc.lot, sc.serial)] = min(first.get((sc.gtin, sc.lot, sc.serial), sc.at_ms), sc.at_ms)
    rows = pq.read_table(month).to_pylist()
    assert len(rows) == len(first) and {(r["gtin"], r["lot"], r["serial"]): int(r["first"].timestamp() * 1000)
                                        for r in rows} == first
    at = lambda ms: datetime.fromtimestamp(ms / 1000, UTC)  # noqa: E731
    analytics = Analytics(out2)
    sql = analytics._scanned_units(at(jan), at(feb))
    assert str(month) in sql and sql.count("part-") == 1  # the month's file alone
    for lo, hi in ((jan, feb), (jan - DAY, feb + DAY), (jan + 5 * DAY, jan + 15 * DAY + 7)):  # what is exported
        seen = collections.defaultdict(set)
        for sc in scans:
            if lo <= sc.at_ms < hi:
                seen[(sc.gtin, sc.lot)].add(sc.serial)
        want = [(b.id, b.gtin, b.lot, str(b.status), b.count, 0, len(seen[(b.gtin, b.lot)])) for b in batches]
        assert analytics.run("funnel", since=at(lo), until=at(hi)).rows == want
    before = month.stat().st_mtime_ns
    await export(store, out2, feb, feb + 2 * DAY)  # later runs leave the month's file alone
    assert month.stat().st_mtime_ns == before


def test_reports_over_an_empty_directory_answer_empty(tmp_path: Path) -> None:
    analytics = Analytics(tmp_path)
    for name in REPORTS:
        result = analytics.run(name, since=datetime(2000, 1, 1, tzinfo=UTC), until=datetime(2100, 1, 1, tzinfo=UTC))
        assert result.columns and (result.rows == [] or name == "time-to-registration")


# -- clone rules (scan times fixed: the detector never reads a clock) ---------------------------------


RULES = {"roles": ["consumer"], "rules": [
    {"name": "abroad", "kind": "countries", "countries": 3, "window_seconds": 3600},
    {"name": "outlier", "kind": "batch_outlier", "window_seconds": 86400, "min_scans": 20, "factor": 5,
     "min_mates": 4},
    {"name": "never issued", "kind": "states", "states": ["unknown", "decommissioned"], "min_scans": 2,
     "window_seconds": 600},
]}


def s(at_s: float, serial: str, country: str | None = None, state: str = "sold", role: str = "consumer",
      lot: str = "L1") -> ScanEvent:
    return ScanEvent(T0 + int(at_s * 1000), GTIN, serial, lot, role, None, state, None, country)


def test_countries_rule_fires_on_the_third_country_within_the_window_only() -> None:
    d = CloneDetector(parse_rules(RULES, "test"))
    assert d.feed([s(0, "A", "DE"), s(600, "A", "FR"), s(4000, "A", "BR")]) == []  # DE is 4000 s old: out
    found = d.feed([s(4100, "A", "US")])
    assert [(f.serial, f.rule, f.at_ms, f.evidence) for f in found] == [
        ("A", "abroad", T0 + 4_100_000, "scanned in 3 countries (BR, FR, US) within 3600 s")]
    assert d.feed([s(4200, "A", "JP")]) == []  # flagged once
    assert d.feed([s(0, "B", "DE", role="technician"), s(1, "B", "FR", role="technician"),
                   s(2, "B", "BR", role="technician")]) == []  # only consumers' scans count


def test_batch_outlier_needs_mates_and_the_factor() -> None:
    d = CloneDetector(parse_rules(RULES, "test"))
    mates = [s(i, f"M{i % 4}") for i in range(8)]  # 4 mates, 2 scans each
    assert d.feed(mates) == []
    hot = [s(100 + i, "HOT") for i in range(19)]
    assert d.feed(hot) == []  # 19 < min_scans
    found = d.feed([s(200, "HOT")])  # 20 > 5 × mean 2
    assert [(f.serial, f.rule) for f in found] == [("HOT", "outlier")]
    assert "20 scans in 86400 s against a mean of 2.0 for 4 batch-mates (lot L1)" == found[0].evidence
    d2 = CloneDetector(parse_rules(RULES, "test"))
    assert d2.feed([s(i, "LONELY") for i in range(50)]) == []  # no batch-mates: nothing to compare
    d3 = CloneDetector(parse_rules(RULES, "test"))  # a new window starts afresh
    d3.feed([s(i, f"M{i % 4}") for i in range(8)] + [s(10 + i, "X") for i in range(15)])
    assert d3.feed([s(86400 + i, "X") for i in range(10)]) == []


def test_state_rule_counts_within_its_window() -> None:
    d = CloneDetector(parse_rules(RULES, "test"))
    assert d.feed([s(0, "Z", state="unknown"), s(700, "Z", state="unknown")]) == []  # 700 s apart: window restarts
    assert [f.rule for f in d.feed([s(800, "Z", state="unknown")])] == ["never issued"]
    assert d.feed([s(0, "OK", state="sold")] * 10) == []


def test_rule_files_are_validated_with_the_field_named(tmp_path: Path) -> None:
    bad = [({"rules": [{"name": "x", "kind": "teleport"}]}, "rules[0].kind"),
           ({"rules": [{"name": "x", "kind": "countries", "countries": 1}]}, "rules[0].countries"),
           ({"rules": [{"name": "x", "kind": "countries", "factor": 3}]}, "rules[0].factor"),
           ({"rules": [{"name": "x", "kind": "batch_outlier", "factor": 0.5}]}, "rules[0].factor"),
           ({"rules": [], "extra": 1}, "extra")]
    for doc, field in bad:
        with pytest.raises(Invalid) as caught:
            parse_rules(doc, "f.yaml")
        assert caught.value.field == f"f.yaml: {field}", doc
    shipped = load_rules(Path(__file__).resolve().parents[1] / "config" / "clone-rules.yaml")
    assert [r.kind for r in shipped.rules] == ["countries", "batch_outlier", "states"]


# -- the API, the country header, the suspect overlay on the scan path ---------------------------------

SUSPECT_RULES = """
version: 1
resolver: {root: "https://id.example.com", allowed_target_hosts: [brand.example.com]}
products:
  - gtin: "09506000134352"
    name: Boiler
    default: gs1:pip
    links:
      - {type: gs1:pip, href: "https://brand.example.com/p/{gtin}", title: Product}
      - {type: gs1:verificationService, href: "https://brand.example.com/verify/{serial}", title: Verify}
    routes:
      - name: suspects go to verification
        when: {state: suspect, role: consumer}
        link: gs1:verificationService
"""


def test_api_page_country_header_and_suspect_routing(resolver_factory: Any, tmp_path: Path) -> None:
    rules = tmp_path / "clones.yaml"
    rules.write_text("rules:\n  - {name: abroad, kind: countries, countries: 2, window_seconds: 3600}\n")
    r = resolver_factory(rules_text=SUSPECT_RULES, country_header="CF-IPCountry", clone_rules=str(rules))
    first = r.get(f"/01/{GTIN}/21/C1", headers={"cf-ipcountry": "de"})
    assert first.status_code == 307 and first.headers["location"].startswith("https://brand.example.com/p/")
    r.get(f"/01/{GTIN}/21/C1", headers={"cf-ipcountry": "XX"})  # unknown: no country
    r.get(f"/01/{GTIN}/21/C1", headers={"cf-ipcountry": "BR"})  # second country: flagged in the background
    for _ in range(100):
        overlays = r.client.portal.call(r.services.store.get_overlays, GTIN)
        if overlays:
            break
        r.client.portal.call(__import__("asyncio").sleep, 0.05)
    assert [(o.kind, o.scope) for o in overlays] == [("suspect", SerialScope("C1"))]
    assert "2 countries (BR, DE)" in overlays[0].reason
    routed = r.get(f"/01/{GTIN}/21/C1")
    assert routed.headers["location"] == "https://brand.example.com/verify/C1"
    assert r.get(f"/01/{GTIN}/21/C2").headers["location"].startswith("https://brand.example.com/p/")
    history = r.client.portal.call(r.services.store.scan_history, GTIN, "C1")
    assert [h.country for h in reversed(history)][:3] == ["DE", None, "BR"]

    # the API: manufacturer only, JSON and CSV of the same numbers
    assert r.get("/v1/analytics").status_code == 401
    assert r.get("/v1/analytics", headers=r.auth("owner", gtins=[GTIN])).status_code == 403
    brand = r.auth("manufacturer", gtins=[GTIN])
    assert r.get("/v1/analytics/suspects?gtin=09506000134369", headers=brand).status_code == 403
    listed = r.get("/v1/analytics/suspects", headers=brand).json()
    assert listed["gtin"] == GTIN and [row[:3] for row in listed["rows"]] == [[GTIN, "C1", "abroad"]]
    text = r.get("/v1/analytics/suspects.csv", headers=brand)
    assert text.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(text.text)))[1][:3] == [GTIN, "C1", "abroad"]
    assert r.get("/v1/analytics/nonsense", headers=brand).status_code == 422
    assert r.get("/v1/analytics/funnel?by=owner", headers=brand).json()["error"]["field"] == "by"
    everything = r.auth("manufacturer", all_products=True)
    assert r.get("/v1/analytics/scans-per-day", headers=r.auth("manufacturer", gtins=[GTIN, GTIN2])).status_code == 403
    empty = r.get("/v1/analytics/scans-per-day?by=country", headers=everything).json()
    assert empty["columns"] == ["day", "country", "scans"] and empty["rows"] == []  # nothing exported yet
    page = r.get("/u/analytics", headers=brand)
    assert page.status_code == 200 and page.text.count('role="img"') == 11 and "C1" in page.text
    assert r.get("/u/analytics").status_code == 401
    doc = r.get("/openapi.json").json()
    assert "/v1/analytics/{report}" in doc["paths"]


def test_scan_events_take_no_country_without_the_setting(resolver: Any) -> None:
    resolver.get(f"/01/{GTIN}/21/NC1", headers={"cf-ipcountry": "DE"})
    resolver.client.portal.call(resolver.services.scans.flush)
    history = resolver.client.portal.call(resolver.services.store.scan_history, GTIN, "NC1")
    assert [h.country for h in history] == [None]


def test_export_command_refuses_an_unsettled_period_and_writes_files(tmp_path: Path) -> None:
    from serialink.cli import main

    store = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["analytics", "export", "--out", str(tmp_path / "o"), "--store", store,
                 "--until", "2999-01-01"]) == 1
    assert main(["analytics", "export", "--out", str(tmp_path / "o"), "--store", store, "--since", "soon"]) == 2
    assert main(["analytics", "export", "--out", str(tmp_path / "o"), "--store", store, "--settle", "0"]) == 0
    assert (tmp_path / "o" / "_periods.json").exists() and (tmp_path / "o" / "batches.parquet").exists()
    assert main(["analytics", "report", "funnel", "--dir", str(tmp_path / "o")]) == 0
    assert date.today()  # the report ran over an empty export


_TEXT = st.none() | st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), *([_TEXT] * 6), st.none() | st.text(max_size=3)),
                max_size=70_000 // 100),
       st.booleans())
def test_the_chunk_decoder_reads_what_msgpack_wrote(rows: list[tuple[Any, ...]], old_rows: bool) -> None:
    """ext.scan_columns against msgpack itself: every value, nulls, 7-value rows of old chunks."""
    if old_rows:
        rows = [r[:7] for r in rows]
    arrays = _chunk_arrays(msgpack.packb(rows), "scans/test")
    got = list(zip(*[a.to_pylist() for a in arrays], strict=True)) if rows else []
    assert got == [tuple(r) + (None,) * (8 - len(r)) for r in rows]


@pytest.mark.parametrize("blob", [b"", b"\x91", b"\x91\x92\x01", msgpack.packb([[1, 2, 3, 4, 5, 6, 7, 8]]),
                                  msgpack.packb([[1, "a"]]), msgpack.packb([[1, "a", "b", "c", "d", "e", "f"]])[:-1],
                                  msgpack.packb([[1, "a", "b", "c", "d", "e", "f"]]) + b"\x00", msgpack.packb({"a": 1})])
def test_a_damaged_chunk_is_a_corrupt_record_not_a_crash(blob: bytes) -> None:
    with pytest.raises(CorruptRecord, match="scans/test"):
        _chunk_arrays(blob, "scans/test")
