"""`serialink tokens` and `serialink lines`: the operator's doors, on a real SQLite store and secret file.

Commands run in-process through ``serialink.cli.main`` (the same code path as the console
script, minus the interpreter start); one test runs the real console script in a shell,
as the README's quickstart does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import time

import pytest

from resolver.access import linekeys
from resolver.access.tokens import TokenVerifier
from serialink import cli
from serialink.serve_cmd import first_run_hint
from settings import load_settings
from twin.store import open_store

GTIN = "09506000134352"
OTHER = "04012345000009"


@pytest.fixture
def op(tmp_path, capsys, monkeypatch):
    """Run `serialink …` against a fresh data directory: (exit status, stdout, stderr)."""
    for name in list(os.environ):
        if name.startswith("SERIALINK_"):
            monkeypatch.delenv(name)
    data = tmp_path / "var"

    def run(*argv: str) -> tuple[int, str, str]:
        action = argv[1] if len(argv) > 1 else None
        where = ["--data-dir", str(data)] if action in ("issue", "list", "revoke", "add", "rotate") else []
        try:
            status = cli.main([*argv, *where])
        except SystemExit as exc:  # argparse's usage errors
            status = int(exc.code or 0)
        out, err = capsys.readouterr()
        return status, out, err

    run.data = data  # type: ignore[attr-defined]
    return run


def _store_call(data, method, *args):
    async def go():
        store = await open_store(f"sqlite:///{data / 'serialink.db'}")
        try:
            return await method(store, *args)
        finally:
            await store.close()
    return asyncio.run(go())


def test_issue_prints_the_token_alone_and_it_verifies_with_the_configured_secret(op):
    status, out, err = op("tokens", "issue", "--role", "manufacturer")
    assert status == 0 and out.count("\n") == 1 and len(out.split()) == 1, (out, err)
    token = out.strip()
    secret = load_settings(env={}, data_dir=str(op.data)).secret()  # the file serve would use
    claims = TokenVerifier(secret).verify(token)
    assert claims.role == "manufacturer" and claims.all_products and claims.principal == "manufacturer:cli"
    assert 29 * 86400 < claims.expires - time.time() <= 30 * 86400
    assert claims.token_id in err and "serialink tokens revoke" in err

    status, out, _ = op("tokens", "issue", "--role", "technician", "--gtin", GTIN, "--serial", "ABC123",
                        "--ttl", "PT2H", "--subject", "tech:ana")
    visit = TokenVerifier(secret).verify(out.strip())
    assert (visit.role, visit.unit, visit.principal) == ("technician", (GTIN, "ABC123"), "tech:ana")
    assert 7100 < visit.expires - time.time() <= 7200 and not visit.all_products
    _, out, _ = op("tokens", "issue", "--role", "line", "--gtin", GTIN, "--site", "plant-1", "--line", "L7",
                   "--ttl", "8h")
    line = TokenVerifier(secret).verify(out.strip())
    assert line.allows_line("plant-1", "L7") and not line.allows_line("plant-1", "L8") and line.gtins == {GTIN}
    _, out, _ = op("tokens", "issue", "--role", "installer", "--prefix", "9506000")
    assert TokenVerifier(secret).verify(out.strip()).allows_gtin(GTIN)


def test_list_shows_every_live_token_without_the_token_and_revoke_marks_it(op):
    tokens = [op("tokens", "issue", "--role", role, "--gtin", GTIN)[1].strip()
              for role in ("manufacturer", "technician", "regulator")]
    status, out, err = op("tokens", "list")
    assert status == 0 and out.splitlines()[0].split() == ["ID", "ROLE", "SCOPE", "SUBJECT", "EXPIRES", "REVOKED"]
    assert len(out.splitlines()) == 4 and not any(t in out for t in tokens)
    _, out, _ = op("tokens", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["role"] for r in rows] == ["manufacturer", "technician", "regulator"]
    assert rows[1]["scope"] == f"GTIN {GTIN}" and rows[1]["subject"] == "technician:cli"
    assert {r["revoked"] for r in rows} == {False} and all(r["expires"].endswith("Z") for r in rows)

    status, _, err = op("tokens", "revoke", rows[1]["id"], "--reason", "visit cancelled")
    assert status == 0 and "revoked" in err
    status, _, err = op("tokens", "revoke", rows[1]["id"])
    assert status == 0 and "already revoked" in err
    _, out, _ = op("tokens", "list", "--json", "--role", "technician")
    assert [(r["id"], r["revoked"]) for r in map(json.loads, out.splitlines())] == [(rows[1]["id"], True)]
    revoked = _store_call(op.data, lambda s: s.revoked_tokens())
    assert set(revoked) == {rows[1]["id"]}  # the list every running resolver reads


def test_lines_add_list_rotate_revoke(op):
    status, out, err = op("lines", "add", "--site", "plant-1", "--line", "L7", "--gtin", GTIN, "--subject", "PLC 7")
    assert status == 0 and len(out.split()) == 1 and out.startswith("slk_") and "shown only now" in err
    key = out.strip()
    claims = _store_call(op.data, linekeys.verify, key)
    assert (claims.role, claims.sites, claims.lines, claims.gtins) == ("line", {"plant-1"}, {"L7"}, {GTIN})
    record = _store_call(op.data, lambda s: s.get_line_key(claims.token_id))
    assert key not in json.dumps(record) and record["hash"] == linekeys.key_hash(key)  # only the hash is kept

    _, out, _ = op("lines", "list")
    assert out.splitlines()[0].split() == ["ID", "SITE", "LINE", "SCOPE", "SUBJECT", "STATE", "CREATED", "UNTIL"]
    assert claims.token_id in out and "active" in out and key not in out and record["hash"] not in out

    status, out, err = op("lines", "rotate", claims.token_id, "--overlap", "1h")
    new_key = out.strip()
    assert status == 0 and new_key.startswith("slk_") and new_key != key and "keeps working until" in err
    assert _store_call(op.data, linekeys.verify, key).token_id == claims.token_id  # the overlap window
    new_claims = _store_call(op.data, linekeys.verify, new_key)
    assert new_claims.sites == {"plant-1"} and new_claims.gtins == {GTIN}
    status, _, err = op("lines", "rotate", claims.token_id)
    assert status == 1 and f"rotate {new_claims.token_id} instead" in err

    _, out, _ = op("lines", "rotate", new_claims.token_id, "--overlap", "0")  # no overlap: stops at once
    third = out.strip()
    with pytest.raises(linekeys.LineKeyRefused, match="rotated"):
        _store_call(op.data, linekeys.verify, new_key)
    status, _, err = op("lines", "revoke", claims.token_id, "--reason", "PLC replaced")
    assert status == 0 and "revoked" in err
    with pytest.raises(linekeys.LineKeyRefused, match="revoked"):
        _store_call(op.data, linekeys.verify, key)
    _, out, _ = op("lines", "list", "--json")
    states = {r["id"]: r["state"] for r in map(json.loads, out.splitlines())}
    assert sorted(states.values()) == ["active", "retired", "revoked"] and all("hash" not in line for line in out)
    assert _store_call(op.data, linekeys.verify, third).role == "line"


@pytest.mark.parametrize("argv, status, says", [
    (["tokens", "issue", "--role", "technician"], 2, "--gtin: a technician token names its products"),
    (["tokens", "issue", "--role", "technician", "--serial", "S1"], 2, "--serial names one unit"),
    (["tokens", "issue", "--role", "technician", "--gtin", GTIN, "--serial", "S1", "--ttl", "2d"], 2, "--ttl: '2d'"),
    (["tokens", "issue", "--role", "manufacturer", "--ttl", "8x"], 2, "--ttl: '8x': expected e.g. 8h"),
    (["tokens", "issue", "--role", "manufacturer", "--ttl", "P1M"], 2, "months and years have no fixed length"),
    (["tokens", "issue", "--role", "manufacturer", "--ttl", "400d"], 2, "out of range"),
    (["tokens", "issue", "--role", "line", "--gtin", GTIN, "--site", "a"], 2, "--site and --line go together"),
    (["tokens", "issue", "--role", "technician", "--gtin", GTIN, "--site", "a", "--line", "b"], 2, "--role line"),
    (["tokens", "issue", "--role", "technician", "--gtin", "123"], 1, "--gtin: expected a 14-digit GTIN"),
    (["tokens", "issue", "--role", "installer", "--prefix", "12"], 1, "--prefix: expected a GS1 company prefix"),
    (["tokens", "issue", "--role", "line", "--gtin", GTIN, "--site", "x" * 41, "--line", "b"], 1, "--site:"),
    (["tokens", "issue", "--role", "owner"], 2, "invalid choice: 'owner'"),
    (["tokens", "issue"], 2, "the following arguments are required: --role"),
    (["tokens", "revoke", "no-such-token"], 1, "no unexpired token 'no-such-token'"),
    (["tokens", "revoke", "bad id!"], 2, "is not a token id"),
    (["tokens", "frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["lines", "add", "--site", "s", "--line", "l"], 2, "--gtin: name the products"),
    (["lines", "add", "--site", "bad site", "--line", "l", "--gtin", GTIN], 1, "--site: expected 1-40 characters"),
    (["lines", "add", "--site", "s", "--line", "l", "--gtin", "123"], 1, "--gtin: expected a 14-digit GTIN"),
    (["lines", "add", "--site", "s", "--line", "l", "--gtin", GTIN, "--ttl", "10m"], 2, "--ttl: '10m' is out of range"),
    (["lines", "rotate", "no-such-key"], 1, "ID: no line key 'no-such-key'"),
    (["lines", "rotate", "no-such-key", "--overlap", "31d"], 2, "--overlap: '31d' is out of range"),
    (["lines", "revoke", "no-such-key"], 1, "ID: no line key 'no-such-key'"),
    (["lines", "list", "--store", "bogus://x"], 1, "unknown scheme 'bogus'"),
])
def test_wrong_inputs_fail_in_one_line_with_the_right_status(op, argv, status, says):
    got, out, err = op(*argv)
    assert got == status and out == "" and "Traceback" not in err, err
    mine = [line for line in err.splitlines() if line.startswith("serialink")]
    assert len(mine) == 1 and says in mine[0], err
    if status == 1:  # our own refusals: exactly one line, naming the command
        assert err.count("\n") == 1 and re.match(rf"serialink {argv[0]}( [a-z]+)?: ", err) is not None


def test_serve_hints_at_the_first_brand_credential_until_one_works(op):
    args = argparse.Namespace(store=None, config=None, data_dir=str(op.data))
    settings = load_settings(env={}, data_dir=str(op.data))
    hint = first_run_hint(args, settings)
    assert hint is not None and hint.count("\n") == 0
    assert f"T=$(serialink tokens issue --role manufacturer --data-dir {op.data})" in hint
    op("tokens", "issue", "--role", "technician", "--gtin", GTIN)
    assert first_run_hint(args, settings) is not None  # a technician cannot administer the resolver
    _, out, _ = op("tokens", "issue", "--role", "manufacturer")
    assert first_run_hint(args, settings) is None
    token_id = TokenVerifier(settings.secret()).verify(out.strip()).token_id
    op("tokens", "revoke", token_id)
    assert first_run_hint(args, settings) is not None  # the only brand token was revoked


def test_the_quickstart_line_works_in_a_shell(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERIALINK_")}
    env["SERIALINK_DATA_DIR"] = str(tmp_path / "var")
    script = ('T=$(serialink tokens issue --role manufacturer) && echo "${#T} $(echo "$T" | tr -cd . | wc -c)" && '
              'serialink tokens issue --role technician --gtin 123; echo "status $?"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    length, dots, _, status = done.stdout.split()
    assert int(length) > 100 and dots == "2" and status == "1"  # a JWS alone on stdout; then a refusal
    assert done.stderr.splitlines()[-1] == "serialink tokens issue: --gtin: expected a 14-digit GTIN with its check digit"
    assert "Traceback" not in done.stderr


def test_token_ids_never_start_with_a_dash():
    """``serialink tokens revoke ID`` is what issue prints; an id starting with ``-`` reads as an
    option there (one id in 64 did). 3,000 draws: a generator that allows it passes with p < 1e-20."""
    from resolver.access.issued import new_token_id

    ids = [new_token_id() for _ in range(3000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", i) for i in ids) and len(set(ids)) == len(ids)
