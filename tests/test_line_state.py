"""Serial states at the line: bulk reports through the real app, both stores, the resolver.

A batch is minted through the line API, reported on (printed, verified pass/fail with a
grade, rejected, unused, closed) and scanned: units resolve ``not_commissioned`` until the
line commissions them, ``decommissioned`` once scrapped, and the example rules send
consumers of both to the verification service. Bad reports change nothing and name the
element; a repeated report changes nothing; the store write is all-or-nothing (SIGKILL).

Run directly, this file is the SIGKILL writer: ``python test_line_state.py <store-url> <data-dir>``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from pyroaring import BitMap

from twin.errors import InvalidInput
from twin.line_state import LineConflict, LineReport, LineState, LineStep, apply_report

GTIN = "09506000134352"
AT = datetime(2026, 3, 1, 8, tzinfo=UTC)
VERIFY = "https://www.example.com/verify/"
REGISTER = "https://www.example.com/register/"


# -- the pure core: every step against every prior state ----------------------------------

PRIOR = {  # what index 0 went through before the report under test
    "allocated": [],
    "printed": [(LineStep.PRINTED, None)],
    "failed": [(LineStep.VERIFIED, "fail")],
    "commissioned": [(LineStep.VERIFIED, "pass")],
    "rejected": [(LineStep.PRINTED, None), (LineStep.REJECTED, None)],
    "unused": [(LineStep.UNUSED, None)],
}
#: (step, result) → prior states that accept it, and the state index 0 is in after it
ALLOWED = {
    (LineStep.PRINTED, None): ({"allocated"}, "not_commissioned"),
    (LineStep.VERIFIED, "pass"): ({"allocated", "printed", "failed"}, "commissioned"),
    (LineStep.VERIFIED, "fail"): ({"allocated", "printed", "failed"}, "not_commissioned"),
    (LineStep.COMMISSIONED, None): ({"allocated", "printed", "failed"}, "commissioned"),
    (LineStep.REJECTED, None): ({"allocated", "printed", "failed"}, "decommissioned"),
    (LineStep.UNUSED, None): ({"allocated"}, "decommissioned"),
    (LineStep.DECOMMISSIONED, None): ({"allocated", "printed", "failed", "commissioned"}, "decommissioned"),
}


def _report(rid: str, step: LineStep, result: str | None, indices=(0, 1)) -> LineReport:
    return LineReport(rid, step, BitMap(indices), AT, result=result, grade="B" if result else None)


@pytest.mark.parametrize("prior", sorted(PRIOR))
@pytest.mark.parametrize("step", sorted(ALLOWED, key=str), ids=lambda s: f"{s[0]}-{s[1]}")
def test_each_step_is_taken_or_refused_by_the_state_it_meets(prior, step):
    state = LineState.empty(4)
    for n, (s, result) in enumerate(PRIOR[prior]):
        state = apply_report(state, _report(f"p{n}", s, result, (0,)))[0]
    before = state
    allowed, after = ALLOWED[step]
    report = _report("x", *step)
    if prior in allowed:
        new, summary, affected = apply_report(state, report)
        assert new.state_of(0) == after and new.state_of(1) == after
        assert list(affected) == [0, 1] and new.version == state.version + 1
        assert summary.commissioned == (2 if after == "commissioned" else 0)
    else:
        with pytest.raises(LineConflict) as refused:
            apply_report(state, report)
        assert refused.value.field == "index 0" and "nothing was applied" in refused.value.reason
        assert state == before  # pure: the refused report changed nothing


def test_close_decommissions_the_rest_and_refuses_any_later_report():
    state = apply_report(LineState.empty(1000), _report("v", LineStep.VERIFIED, "pass", range(0, 600)))[0]
    state, summary, affected = apply_report(state, LineReport("c", LineStep.CLOSE, BitMap(), AT))
    assert (summary.decommissioned, len(affected), affected.min()) == (400, 400, 600)
    assert state.counts()["commissioned"] == 600 and state.counts()["not_commissioned"] == 0
    with pytest.raises(LineConflict, match="closed"):
        apply_report(state, _report("late", LineStep.REJECTED, None, (700,)))
    with pytest.raises(InvalidInput, match="outside the batch"):
        apply_report(LineState.empty(10), _report("far", LineStep.PRINTED, None, (10,)))


# -- through the app: SQLite and Redis -------------------------------------------------------


def _mint(r, count=1000, request_id="m1", tracking=True, **extra):
    headers = r.auth("manufacturer", gtins=[GTIN])
    body = {"gtin": GTIN, "count": count, "profile": "default", "request_id": request_id, "lot": "L1",
            "formats": "csv", "line_tracking": tracking, **extra}
    made = r.client.post("/v1/batches", json=body, headers=headers)
    assert made.status_code in (200, 201), made.text
    batch_id = made.json()["batch"]["id"]
    header, *rows = r.client.get(f"/v1/batches/{batch_id}/files/codes.csv", headers=headers).text.splitlines()
    column = header.split(",").index("serial")
    return batch_id, [row.split(",")[column] for row in rows], headers


def _scan(r, serial):
    return r.get(f"/01/{GTIN}/21/{serial}").headers.get("location", "")


def _report_post(r, batch_id, headers, **body):
    return r.client.post(f"/v1/batches/{batch_id}/reports", json=body, headers=headers)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_batch_goes_from_printed_to_commissioned_or_scrapped_and_scans_follow(resolver_factory, backend, request):
    url = None if backend == "sqlite" else f"{request.getfixturevalue('redis_url')}?prefix=line{os.getpid()}{time.time_ns()}"
    r = resolver_factory(store_url=url)
    batch_id, serials, headers = _mint(r)
    assert r.client.get(f"/v1/batches/{batch_id}/line", headers=headers).json()["tracked"] is True
    assert _scan(r, serials[5]).startswith(VERIFY)  # minted, never commissioned

    printed = _report_post(r, batch_id, headers, report_id="print-1", step="printed", ranges=[{"start": 0, "count": 900}])
    assert printed.status_code == 201, printed.text
    passed = _report_post(r, batch_id, headers, report_id="cam-1", step="verified", result="pass", grade="A",
                          serials=serials[:10], ranges=[{"start": 10, "count": 790}])
    assert passed.status_code == 201 and passed.json()["report"]["commissioned"] == 800
    failed = _report_post(r, batch_id, headers, report_id="cam-2", step="verified", result="fail", grade="F",
                          serials=serials[800:850])
    rejected = _report_post(r, batch_id, headers, report_id="bin-1", step="rejected", serials=serials[800:850])
    unused = _report_post(r, batch_id, headers, report_id="ret-1", step="unused", ranges=[{"start": 950, "count": 50}])
    assert [x.status_code for x in (failed, rejected, unused)] == [201, 201, 201], rejected.text
    line = rejected.json()["line"]
    assert (line["commissioned"], line["verified_fail"], line["grades"]) == (800, 50, {"A": 800, "F": 50})

    assert _scan(r, serials[3]).startswith(REGISTER)  # commissioned: the owner is invited to register
    assert _scan(r, serials[820]).startswith(VERIFY)  # rejected at the camera
    assert _scan(r, serials[960]).startswith(VERIFY)  # returned unused
    assert _scan(r, serials[870]).startswith(VERIFY)  # printed, never inspected

    again = _report_post(r, batch_id, headers, report_id="cam-1", step="verified", result="pass", grade="A",
                         serials=serials[:10], ranges=[{"start": 10, "count": 790}])
    assert again.status_code == 200 and again.json()["report"]["replayed"] is True
    assert again.json()["line"] == unused.json()["line"]  # nothing changed

    closed = r.client.post(f"/v1/batches/{batch_id}/close", json={"report_id": "close-1"}, headers=headers)
    assert closed.status_code == 201 and closed.json()["report"]["decommissioned"] == 100  # 850..949
    assert closed.json()["line"]["not_commissioned"] == 0
    assert _scan(r, serials[870]).startswith(VERIFY) and _scan(r, serials[3]).startswith(REGISTER)
    reports = r.client.get(f"/v1/batches/{batch_id}/reports", headers=headers).json()["reports"]
    assert [x["report_id"] for x in reports] == ["open", "print-1", "cam-1", "cam-2", "bin-1", "ret-1", "close-1"]
    late = _report_post(r, batch_id, headers, report_id="late", step="rejected", serials=serials[900:901])
    assert late.status_code == 409 and late.json()["field"] == "batch"


def test_bad_reports_are_refused_naming_the_element_and_change_nothing(resolver_factory):
    r = resolver_factory()
    batch_id, serials, headers = _mint(r, count=300)
    other_id, other, _ = _mint(r, count=50, request_id="m2")
    ok = _report_post(r, batch_id, headers, report_id="ok", step="verified", result="pass", serials=serials[:20])
    assert ok.status_code == 201
    before = r.client.get(f"/v1/batches/{batch_id}/line", headers=headers).json()
    cases = [
        ({"step": "verified", "result": "pass", "serials": [serials[30], other[4]]}, 422, "serials[1]"),
        ({"step": "verified", "result": "pass", "serials": [serials[30], "NOT-A-SERIAL"]}, 422, "serials[1]"),
        ({"step": "commissioned", "serials": serials[25:30] + [serials[3]]}, 409, "serials[5]"),
        ({"step": "commissioned", "ranges": [{"start": 100, "count": 10}, {"start": 0, "count": 5}]}, 409, "ranges[1]"),
        ({"step": "printed", "serials": [serials[40], serials[41], serials[40]]}, 422, "serials[2]"),
        ({"step": "printed", "serials": [serials[40]], "ranges": [{"start": 0, "count": 300}]}, 422, "ranges[0]"),
        ({"step": "rejected", "serials": [serials[2]]}, 409, "serials[0]"),
        ({"step": "printed", "ranges": [{"start": 290, "count": 20}]}, 422, "ranges[0]"),
        ({"step": "verified", "result": "maybe", "serials": [serials[50]]}, 422, "result"),
        ({"step": "verified", "result": "pass", "grade": "E", "serials": [serials[50]]}, 422, "grade"),
        ({"step": "printed", "serials": [serials[50]], "colour": "red"}, 422, "colour"),
        ({"step": "boxed", "serials": [serials[50]]}, 422, "step"),
        ({"step": "printed"}, 422, "serials"),
        ({"step": "close", "serials": [serials[50]]}, 422, "serials"),
        ({"report_id": "ok", "step": "verified", "result": "pass", "serials": serials[:21]}, 409, "report_id"),
    ]
    for n, (body, status, field) in enumerate(cases):
        got = _report_post(r, batch_id, headers, **{"report_id": f"bad-{n}", **body})
        assert got.status_code == status and got.json()["field"] == field, (n, got.text)
        assert got.headers["content-type"] == "application/problem+json"
    assert r.client.get(f"/v1/batches/{batch_id}/line", headers=headers).json() == before
    sited, sited_serials, _ = _mint(r, count=5, request_id="m3", site="s1", line="l1")
    wrong_line = r.auth("line", gtins=[GTIN], sites=["other"], lines=["x"])
    scoped = _report_post(r, sited, wrong_line, report_id="w", step="commissioned", serials=sited_serials[:1])
    assert scoped.status_code == 403 and _scan(r, sited_serials[0]).startswith(VERIFY)


def test_batches_minted_before_line_tracking_resolve_as_before_until_their_first_report(resolver_factory):
    r = resolver_factory()
    batch_id, serials, headers = _mint(r, count=100, tracking=False)
    assert r.client.get(f"/v1/batches/{batch_id}/line", headers=headers).json()["tracked"] is False
    assert _scan(r, serials[50]).startswith(REGISTER)  # untracked: the batch speaks, as before
    first = _report_post(r, batch_id, headers, report_id="r1", step="verified", result="pass", serials=serials[:10])
    assert first.status_code == 201
    assert _scan(r, serials[5]).startswith(REGISTER) and _scan(r, serials[50]).startswith(VERIFY)


def test_other_workers_follow_a_report_through_the_change_feed(resolver_factory):
    """A report written by another process (the store directly, not this app) reaches the
    worker's cached bitmap through the change feed."""
    from twin.events import Actor

    r = resolver_factory()
    batch_id, serials, _ = _mint(r, count=100)
    assert _scan(r, serials[7]).startswith(VERIFY)  # the view is cached now
    services = r.services
    from serializer.line_reports import submit

    r.client.portal.call(lambda: submit(services.store, services.keys, services.profiles, batch_id,
                                        {"report_id": "x", "step": "commissioned", "serials": [serials[7]]},
                                        Actor("line", "other-worker")))
    deadline = time.monotonic() + 5
    while not _scan(r, serials[7]).startswith(REGISTER):
        assert time.monotonic() < deadline, "the change feed never invalidated the cached line state"
        time.sleep(0.05)
    assert services.lookup.lines.loads >= 2


# -- the store: all or nothing under SIGKILL, replay after a crash ---------------------------


async def _write_reports(url: str, data: str) -> None:
    from serializer.keys import KeyStore
    from serializer.line_reports import submit
    from serializer.minting import BatchRequest, mint
    from serializer.profiles import load_profiles
    from twin.events import Actor
    from twin.store import open_store

    line = Actor("line", "crash")
    async with await open_store(url) as store:
        keys, profiles = KeyStore(f"{data}/keys"), load_profiles()
        minted = await mint(store, keys, profiles, BatchRequest.parse(
            {"gtin": GTIN, "count": 2_000_000, "profile": "default", "request_id": "big"}), line)
        print(f"B {minted.batch.id}", flush=True)
        i = 0
        while True:  # 200k-unit reports, one after another, until killed
            body = {"report_id": f"r{i}", "step": "commissioned", "ranges": [{"start": i * 1000, "count": 1000}],
                    "serials": minted.serials(1_000_000 + i * 20_000, 20_000)}
            await submit(store, keys, profiles, minted.batch.id, body, line)
            print(f"R {i}", flush=True)
            i += 1


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sigkill_during_reports_leaves_each_report_whole_or_absent(tmp_path, backend, request):
    url = f"sqlite:///{tmp_path / 'twin.db'}" if backend == "sqlite" else \
        f"{request.getfixturevalue('redis_url')}?prefix=crash{os.getpid()}{time.time_ns()}"
    proc = subprocess.Popen([sys.executable, __file__, url, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.stdout is not None
    acked: list[int] = []
    batch_id = proc.stdout.readline().split()[1]
    while len(acked) < 3:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        acked.append(int(line.split()[1]))
    time.sleep(0.013)  # land the kill inside a later report
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acked += [int(x.split()[1]) for x in proc.stdout.read().splitlines() if x.startswith("R ")]

    async def check():
        from serializer.keys import KeyStore
        from serializer.line_reports import submit
        from serializer.minting import regenerate
        from serializer.profiles import load_profiles
        from twin.events import Actor
        from twin.store import open_store

        async with await open_store(url) as store:
            state = await store.get_line_state(batch_id)
            reports = await store.line_reports(batch_id)
            applied = [int(x.report_id[1:]) for x in reports]
            assert applied[: len(acked)] == acked and applied == list(range(len(applied)))
            assert len(state.commissioned) == 21_000 * len(applied)  # every report whole, none torn
            keys, profiles = KeyStore(f"{tmp_path}/keys"), load_profiles()
            minted = await regenerate(await store.get_batch(batch_id), keys, profiles)
            n = applied[-1]  # the line repeats its last report after the crash: nothing changes
            body = {"report_id": f"r{n}", "step": "commissioned", "ranges": [{"start": n * 1000, "count": 1000}],
                    "serials": minted.serials(1_000_000 + n * 20_000, 20_000)}
            replay = await submit(store, keys, profiles, batch_id, body, Actor("line", "crash"))
            assert replay.replayed and (await store.get_line_state(batch_id)) == state
    asyncio.run(check())


def test_the_cli_reports_closes_and_names_what_it_refuses(tmp_path):
    def cli(*args, stdin=None):
        env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
        return subprocess.run([sys.executable, "-m", "serialink", *args, "--store", f"sqlite:///{tmp_path}/t.db",
                               "--key-dir", str(tmp_path / "k")], capture_output=True, text=True, input=stdin, env=env)

    minted = cli("mint", "--gtin", GTIN, "--count", "100", "--out", str(tmp_path / "o"), "--line-tracking")
    assert minted.returncode == 0, minted.stderr
    serials = [row.split(",")[1] for row in (tmp_path / "o" / "codes.csv").read_text().splitlines()[1:]]
    batch = "09506000134352.default.0"
    done = cli("line", "report", "--batch", batch, "--report-id", "r1", "--step", "verified", "--result", "pass",
               "--grade", "B", "--serials", "-", "--range", "50:60", stdin="\n".join(serials[:10]))
    assert done.returncode == 0, done.stderr
    import json
    assert json.loads(done.stdout)["line"]["commissioned"] == 20
    refusals = [
        (("line", "report", "--batch", batch, "--report-id", "r2", "--step", "commissioned", "--range", "55:57"), 1,
         "serialink line: ranges[0]: batch index 55 is already commissioned"),
        (("line", "report", "--batch", batch, "--report-id", "r2", "--step", "commissioned", "--range", "9:3"), 2,
         "serialink line: --range '9:3'"),
        (("line", "report", "--batch", batch, "--report-id", "r1", "--step", "printed", "--range", "70:71"), 1,
         "serialink line: report_id 'r1' was already used"),
        (("line", "status", "--batch", "09506000134352.default.5000"), 1, "serialink line: no batch"),
    ]
    for args, status, message in refusals:
        got = cli(*args)
        assert got.returncode == status and got.stderr.replace(f"serialink line {args[1]}: ", "serialink line: ").startswith(message) and "Traceback" not in got.stderr, got.stderr
    closed = cli("line", "close", "--batch", batch, "--report-id", "c1")
    assert json.loads(closed.stdout)["report"]["decommissioned"] == 80
    status = json.loads(cli("line", "status", "--batch", batch).stdout)
    assert status["line"]["closed"] is True and status["line"]["not_commissioned"] == 0


if __name__ == "__main__":
    asyncio.run(_write_reports(sys.argv[1], sys.argv[2]))


def test_a_worker_keeps_the_line_view_of_every_batch_its_verifier_keeps(tmp_path):
    """A GTIN with more batches than the old 10k bound, scanned at random, read the store
    for a batch's line state on most scans (the view had been evicted): the views are kept
    for as many batches as the verifier keeps, so a second pass over 20k batches reads none."""
    from resolver.scan.line_views import LineViews
    from serializer.verify import SerialVerifier
    from twin.store import open_store

    async def run() -> None:
        async with await open_store(f"sqlite:///{tmp_path / 'twin.db'}") as store:
            views = LineViews(store)
            ids = [f"{GTIN}.default.{i * 10}" for i in range(20_000)]
            assert [await views.get(b) for b in ids] == [None] * len(ids)  # untracked, each read once
            assert views.loads == len(ids)
            assert [await views.get(b) for b in reversed(ids)] == [None] * len(ids)
            assert views.loads == len(ids)
            assert views._max >= SerialVerifier.__init__.__kwdefaults__["max_gtins"]
    asyncio.run(run())
