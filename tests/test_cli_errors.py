"""Every subcommand, given a wrong input or an unreachable dependency, says so in one line.

``serialink <command>: <what is wrong and what to do>``, exit 1 (2 for usage), never a
traceback and never the catch-all "unexpected error" line (that one means a layer failed
without saying what is wrong). The matrix is built from the argparse parser itself: every
leaf command needs a valid baseline invocation here, and every one of its options a list of
wrong values (or an entry in ``FREE``), so a new command or flag fails this test until it is
covered. Each case changes one thing in the baseline: an argument, or the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from serialink import cli

REPO = Path(__file__).resolve().parents[1]
GTIN = "09506000134352"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

BATCH = f"{GTIN}.default.0"  # the batch PREPARE["minted"] mints
SSCC = "095060000000000114"  # a case of PREPARE["packed"]
_LOCAL = ["--store", "sqlite:///{tmp}/db", "--data-dir", "{tmp}/var"]
_MINTED = ["--store", "sqlite:///{tmp}/db", "--key-dir", "{tmp}/keys"]

#: A valid invocation of every leaf command ({tmp}, {rules}, … are filled in per run).
BASELINE: dict[str, list[str]] = {
    "parse": ["parse", f"https://id.gs1.org/01/{GTIN}"],
    "convert": ["convert", f"(01){GTIN}"],
    "serve": ["serve", "--port", "{port}"],  # runs in its own directory: data in ./var, SQLite
    "rules check": ["rules", "check", "{rules}"],
    "rules explain": ["rules", "explain", f"https://id.gs1.org/01/{GTIN}/21/ABC", "--rules", "{rules}"],
    "rules diff": ["rules", "diff", "{rules}", "{rules}", "--scans", "{scans}"],
    "mint": ["mint", "--gtin", GTIN, "--count", "3", "--format", "csv,zpl", "--out", "{tmp}/out", "--store", "sqlite:///{tmp}/db",
             "--key-dir", "{tmp}/keys", "--no-progress"],
    "import": ["import", "{codes}", "--gtin", GTIN, "--store", "sqlite:///{tmp}/db", "--key-dir", "{tmp}/keys"],
    "batches list": ["batches", "list", "--store", "sqlite:///{tmp}/db", "--key-dir", "{tmp}/keys"],
    "sscc mint": ["sscc", "mint", "--prefix", "9506000", "--extension", "3", "--count", "3", "--out", "{tmp}/ssccs",
                  "--store", "sqlite:///{tmp}/db"],
    "sscc list": ["sscc", "list", "--prefix", "9506000", "--extension", "3", "--store", "sqlite:///{tmp}/db"],
    "batches void": ["batches", "void", f"{GTIN}.default.0", "--reason", "never printed",
                     "--store", "sqlite:///{tmp}/db"],
    "scans export": ["scans", "export", "--since", "1d", "--store", "sqlite:///{tmp}/db", "--out", "{tmp}/s.jsonl"],
    "config show": ["config", "show"],
    "tokens issue": ["tokens", "issue", "--role", "manufacturer", "--gtin", GTIN, "--ttl", "8h", *_LOCAL],
    "tokens list": ["tokens", "list", "--role", "manufacturer", *_LOCAL],
    "tokens revoke": ["tokens", "revoke", "{token}", "--reason", "left the company", *_LOCAL],
    "lines add": ["lines", "add", "--site", "plant-1", "--line", "L1", "--gtin", GTIN, "--ttl", "365d", *_LOCAL],
    "lines list": ["lines", "list", *_LOCAL],
    "lines rotate": ["lines", "rotate", "{line_key}", "--overlap", "24h", *_LOCAL],
    "lines revoke": ["lines", "revoke", "{line_key}", "--reason", "line scrapped", *_LOCAL],
    "dpp export": ["dpp", "export", "--gtin", GTIN, "--format", "jsonl", "--out", "{tmp}/dpp.jsonl", "--rules", "{rules}",
                   *_MINTED],
    "line report": ["line", "report", "--batch", BATCH, "--step", "printed", "--range", "0:2", "--report-id", "r-1",
                    *_MINTED],
    "line close": ["line", "close", "--batch", BATCH, "--report-id", "close-1", "--reason", "shift end", *_MINTED],
    "line status": ["line", "status", "--batch", BATCH, *_MINTED],
    "pack": ["pack", "--parent", SSCC, "--children", "{tmp}/minted/codes.csv", "--event-id", "p-1", *_MINTED],
    "unpack": ["unpack", "--parent", SSCC, "--event-id", "u-1", *_MINTED],
    "analytics export": ["analytics", "export", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z",
                         "--settle", "60", "--out", "{tmp}/analytics", "--store", "sqlite:///{tmp}/db"],
    "analytics report": ["analytics", "report", "scans-per-day", "--dir", "{tmp}/analytics", "--since",
                         "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z", "--gtin", GTIN, "--by", "role"],
}
#: What a baseline needs to exist first (run in the same directory before it): a line-tracked
#: batch for the line commands and the DPP export, a token and a line key to revoke or
#: rotate, an export to report on. Their ids are read from what these print.
PREPARE: dict[str, list[str]] = {
    "minted": ["mint", "--gtin", GTIN, "--count", "3", "--format", "csv", "--out", "{tmp}/minted", "--line-tracking",
               "--no-progress", *_MINTED],
    "commissioned": ["line", "report", "--batch", BATCH, "--step", "commissioned", "--range", "0:3", "--report-id",
                     "c-all", *_MINTED],
    "packed": ["pack", "--parent", SSCC, "--children", "{tmp}/minted/codes.csv", "--event-id", "p-0", *_MINTED],
    "token": ["tokens", "issue", "--role", "technician", "--gtin", GTIN, *_LOCAL],
    "line_key": ["lines", "add", "--site", "plant-1", "--line", "L2", "--gtin", GTIN, *_LOCAL],
    "analytics": ["analytics", "export", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z",
                  "--out", "{tmp}/analytics", "--store", "sqlite:///{tmp}/db"],
}
NEEDS: dict[str, tuple[str, ...]] = {
    "dpp export": ("minted",), "line report": ("minted",), "line close": ("minted",), "line status": ("minted",),
    "tokens revoke": ("token",), "lines rotate": ("line_key",), "lines revoke": ("line_key",),
    "analytics report": ("analytics",), "batches list": ("minted",), "batches void": ("minted",),
    "pack": ("minted", "commissioned"), "unpack": ("minted", "commissioned", "packed"),
}

_PATHS_TO_READ = ["{tmp}/missing", "{tmp}", "{garbage}"]
#: Wrong values by argparse ``dest``; every one must be refused (exit 1 or 2).
WRONG: dict[str, list[str]] = {
    "store": ["bogus://x", UNREACHABLE_REDIS, "sqlite:////proc/x/db", "not a url", "redis://127.0.0.1:1/0?durability=x"],
    "out": ["/proc/x", "{file}"],
    "data_dir": ["/proc/x", "{file}"],
    "key_dir": ["/proc/x", "{file}"],
    "config": ["{tmp}/missing", "{file}"],
    "config_dir": ["{tmp}/missing", "{badsettings}"],
    "rules": ["{tmp}/missing.yaml", "{tmp}", "{garbage}"],
    "file": _PATHS_TO_READ,
    "old": _PATHS_TO_READ,
    "new": _PATHS_TO_READ,
    "scans": ["{tmp}/missing", "{tmp}", "{garbage}"],
    "profiles": ["{tmp}/missing.yaml", "{garbage}"],
    "zpl_template": ["{tmp}/missing.zpl", "{garbage}"],
    "gtin": ["123", "09506000134353", "abc"],
    "count": ["0", "abc", "-1", "99999999999"],
    "expiry": ["2080-06-30", "2026-W01-1", "\u0662\u0660\u0662\u0667-\u0660\u0661-\u0660\u0661", "2027-02-30"],
    "stem": ["not a url", "https://x.example/?q=1", "http://x.example", "https://x.example/#f"],
    "format": ["gif", ",", ""],
    "port": ["abc", "0", "70000"],
    "workers": ["0", "abc", "-1"],
    "host": ["256.256.256.256", "no such host.invalid"],
    "ssl_cert": ["{tmp}/missing.pem"],
    "ssl_key": ["{tmp}/missing.pem"],
    "request_id": ["bad id!", "x" * 101],
    "lot": ["x" * 21, "\u00e4"],
    "site": ["bad name!"],
    "line": ["bad name!"],
    "profile": ["nope", "bad name!"],
    "batch_id": ["nope", f"{GTIN}.default.999"],
    "reason": [" "],
    "since": ["yesterday", "2026-13-01"],
    "url": ["not a url", "https://id.gs1.org/01/123", f"https://id.gs1.org/01/{GTIN}/21/A%2x"],
    "uris": ["not a url"],
    "inputs": ["not a url"],
    "to": ["bogus"],
    "role": ["bogus"],
    "state": ["bogus"],
    "status": ["bogus"],
    "samples": ["abc"],
    # tokens, line keys, line reports, DPP and analytics
    "id": ["", "bad id!", "x" * 200, "tok_0000000000000000"],
    "ttl": ["forever", "0s", "-1h", "abc"],
    "overlap": ["forever", "-1h", "abc"],
    "prefix": ["12", "abc", "0950600013435200"],
    "extension": ["a", "10", "-1", ""],
    "serial": ["x" * 21, "bad serial \u00e4"],
    "batch": ["nope", f"{GTIN}.default.999", f"{GTIN}.nope.0"],
    "step": ["bogus", ""],
    "result": ["maybe"],
    "grade": ["Z"],
    "serials": ["{tmp}/missing", "{tmp}", "{garbage}"],
    "ranges": ["5:2", "abc", "0:99999999", "-1:2"],
    "report_id": ["bad id!", "x" * 101, ""],
    "until": ["yesterday", "2026-13-01", "2025-01-01T00:00:00Z"],
    "settle": ["abc", "-5", "nan"],
    "dir": ["{tmp}/missing", "{file}", "/proc/x"],
    "name": ["bogus"],
    "by": ["bogus"],
    # pack / unpack
    "parent": ["123", "095060000000000115", "abc"],
    "children": ["{tmp}/missing", "{tmp}", "{garbage}"],
    "child": ["nope", "https://id.gs1.org/01/123", "095060000000000115", f"https://id.gs1.org/01/{GTIN}/21/NOT-OURS"],
    "event_id": ["bad id!", "x" * 201],
    # rules explain: the unit's history for moment conditions
    **{dest: ["yesterday", "2026-13-01"] for dest in ("made", "registered", "installed", "serviced",
                                                     "firmware_updated", "warranty_start", "warranty_end",
                                                     "consumable_due", "at")},
}
#: Where one command's option takes other values than WRONG's (same dest, other meaning).
WRONG_FOR: dict[tuple[str, str], list[str]] = {
    ("parse", "stem"): ["not a url", "https://x.example/?q=1", "ftp://x.example", "https://x.example/#f"],
    ("convert", "stem"): ["not a url", "https://x.example/?q=1", "ftp://x.example"],
    ("scans export", "out"): ["/proc/x/scans.jsonl", "{tmp}"],
    ("dpp export", "out"): ["/proc/x/dpp.jsonl", "{tmp}"],
    ("tokens list", "role"): ["bogus", ""],
}
#: Inputs a command exists to judge: a wrong one is its verdict, exit 1 with the report on
#: stdout (``parse``: "invalid … at position 3"; ``rules explain``: "answer: 400"), not an error.
VERDICTS = {("parse", "uris"), ("convert", "inputs"), ("rules explain", "url")}
#: Options any value of which is acceptable input (flags, free text the command only echoes).
FREE = {"help", "json", "lenient", "recalled", "stolen", "progress", "reuse_port", "verbose", "lang", "accept",
        "link_type", "context", "line_tracking", "firmware", "allow_cross_site",
        "subject"}  # tokens/lines: a note kept with the credential, any text
#: The environment, wrong: a command that reads the setting refuses it in one line; one
#: that does not may succeed.
WRONG_ENV: list[dict[str, str]] = [
    {"SERIALINK_PORT": "abc"},
    {"SERIALINK_WORKERS": "0"},
    {"SERIALINK_STORE_URL": "bogus://x"},
    {"SERIALINK_STORE_URL": UNREACHABLE_REDIS},
    {"SERIALINK_CONFIG_DIR": "{tmp}/missing"},
    {"SERIALINK_CONFIG_DIR": "{badsettings}"},
    {"SERIALINK_DATA_DIR": "/proc/x"},
    {"SERIALINK_RULES_FILE": "{tmp}/missing.yaml"},
    {"SERIALINK_DL_STEM": "not a url"},
]


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(command words, parser) of every leaf subcommand."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(words), parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, (*words, name))


LEAVES = dict(_leaves(cli.build_parser()))


def _dest_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if not isinstance(a, argparse._SubParsersAction)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The files the baselines name, and the wrong ones."""
    tmp = tmp_path_factory.mktemp("cli")
    rules = (REPO / "config" / "rules.yaml").read_text()
    (tmp / "rules.yaml").write_text(rules)
    (tmp / "scans.jsonl").write_text(f'{{"uri": "https://id.gs1.org/01/{GTIN}/21/ABC"}}\n')
    (tmp / "codes.txt").write_text(f"{GTIN},IMPORTED1\n{GTIN},IMPORTED2\n")
    (tmp / "garbage").write_bytes(b"\xff\xfe{{ not: [yaml, json or zpl\x00\n")
    (tmp / "a-file").write_text("not a directory\n")
    bad = tmp / "badsettings"
    bad.mkdir()
    (bad / "settings.yaml").write_text("port: [1, 2\n")
    return tmp


def _fill(text: str, tmp: Path, port: int, made: dict[str, str] | None = None) -> str:
    return text.format(tmp=tmp, rules=tmp / "rules.yaml", scans=tmp / "scans.jsonl", codes=tmp / "codes.txt",
                       garbage=tmp / "garbage", file=tmp / "a-file", badsettings=tmp / "badsettings", port=port,
                       **(made or {}))


#: How to read the id a PREPARE step made from what it printed.
MADE = {"token": re.compile(r"issued (\S+) "), "line_key": re.compile(r"key (\S+) for ")}


def _prepare(command: str, tmp: Path, port: int) -> dict[str, str]:
    """Run what the baseline of ``command`` needs (PREPARE) in ``tmp``; the ids it made."""
    made = {}
    for step in NEEDS.get(command, ()):
        argv = [_fill(w, tmp, port) for w in PREPARE[step]]
        status, _out, err = _run_in_process(argv, {}, tmp)
        assert status == 0, f"preparing {command}: {argv} failed: {err}"
        if step in MADE:
            found = MADE[step].search(err)
            assert found, f"preparing {command}: no id in {err!r}"
            made[step] = found.group(1)
    return made


def _replace(argv: list[str], command: str, dest: str, value: str) -> list[str]:
    """The baseline with ``dest`` set to ``value`` (replaced if present, else added).
    Baselines put their positionals right after the command words, in order. An option in a
    mutually exclusive group replaces the baseline's alternative (``dpp export --batch`` drops
    ``--gtin``), and a value starting with ``-`` is given as ``--flag=value``: either way the
    command's own check sees the value, not argparse."""
    parser = LEAVES[command]
    action = _dest_flags(parser)[dest]
    out = list(argv)
    if action.option_strings:
        for group in parser._mutually_exclusive_groups:
            if action in group._group_actions:
                for other in group._group_actions:
                    for f in set(other.option_strings) & set(out) - set(action.option_strings):
                        i = out.index(f)
                        del out[i:i + 2]
        words = [f"{action.option_strings[-1]}={value}"] if value.startswith("-") else [action.option_strings[-1], value]
        for f in action.option_strings:
            if f in out:
                i = out.index(f)
                return [*out[:i], *words, *out[i + 2:]]
        return [*out, *words]
    positionals = [a.dest for a in parser._actions if not a.option_strings]
    out[len(command.split()) + positionals.index(dest)] = value
    return out


def _command_of(argv: list[str]) -> str:
    for n in range(len(argv), 0, -1):
        if " ".join(argv[:n]) in LEAVES:
            return " ".join(argv[:n])
    raise AssertionError(argv)


def _cases():
    for command, parser in LEAVES.items():
        for dest in _dest_flags(parser):
            for value in WRONG_FOR.get((command, dest), WRONG.get(dest, ())):
                yield pytest.param(command, dest, value, None, id=f"{command}--{dest}={value[:24]}")
        for env in WRONG_ENV:
            (key, value), = env.items()
            yield pytest.param(command, None, None, env, id=f"{command}-{key}={value[:24]}")


CASES = list(_cases())


def test_every_command_has_a_baseline_and_every_option_wrong_values():
    assert set(LEAVES) == set(BASELINE), "add a baseline invocation for each new subcommand"
    uncovered = [f"{c} {d}" for c, p in LEAVES.items() for d in _dest_flags(p) if d not in WRONG and d not in FREE]
    assert not uncovered, f"give WRONG values (or a FREE entry) for: {uncovered}"
    assert len(CASES) > 200


def _run_in_process(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)  # parse writes to .buffer
    err = io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(argv)
            except SystemExit as exc:  # argparse usage errors
                status = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return status, out.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check(command: str, status: int, stdout: str, stderr: str, must_fail: bool, what: str,
           verdict: bool = False) -> None:
    assert "Traceback" not in stdout + stderr, f"{what}: traceback\n{stderr[-3000:]}"
    assert "unexpected error" not in stderr, f"{what}: not explained: {stderr}"
    assert status in ((1, 2) if must_fail else (0, 1, 2)), f"{what}: exit {status}: {stdout[-500:]} {stderr[-500:]}"
    if verdict and status == 1 and not stderr.strip():
        assert stdout.strip(), f"{what}: exit 1 without a verdict"
        return
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status != 0:
        assert lines, f"{what}: exit {status} without a word"
        assert lines[-1].startswith(f"serialink {command}: "), f"{what}: {stderr}"
    if status == 1:  # exit 2 is argparse's usage block, then the one line
        assert len(lines) == 1, f"{what}: more than one line: {stderr}"


@pytest.mark.parametrize("command", sorted(set(BASELINE) - {"serve"}))
def test_every_baseline_succeeds(world, tmp_path, command):
    """A wrong value must be refused for itself, not because the baseline around it fails."""
    port = _free_port()
    for name in ("rules.yaml", "scans.jsonl", "codes.txt"):
        (tmp_path / name).write_bytes((world / name).read_bytes())
    made = _prepare(command, tmp_path, port)
    argv = [_fill(w, tmp_path, port, made) for w in BASELINE[command]]
    status, out, err = _run_in_process(argv, {}, tmp_path)
    assert status == 0, f"{argv}: exit {status}: {err[-1000:]}"


@pytest.mark.parametrize("command,dest,value,env", [c for c in CASES if c.values[0] != "serve"])
def test_wrong_input_gives_one_line_never_a_traceback(world, tmp_path, command, dest, value, env):
    port = _free_port()
    # the files the baseline names live in this test's directory, and what it needs made first
    for name in ("rules.yaml", "scans.jsonl", "codes.txt"):
        (tmp_path / name).write_bytes((world / name).read_bytes())
    made = _prepare(command, tmp_path, port)
    argv = [_fill(w, tmp_path, port, made) for w in BASELINE[command]]
    if dest is not None:
        argv = _replace(argv, command, dest, _fill(value, world, port))
    env = {k: _fill(v, world, port) for k, v in (env or {}).items()}
    argv = [w.replace(str(world / "rules.yaml"), str(tmp_path / "rules.yaml")) for w in argv]
    status, out, err = _run_in_process(argv, env, tmp_path)
    _check(command, status, out, err, must_fail=dest is not None, what=" ".join(argv) + f" {env}",
           verdict=(command, dest) in VERDICTS)


def test_serve_refuses_every_wrong_input_in_one_line(world, tmp_path):
    """serve forks Granian when its input is right, so its cases run as processes, together
    (each in its own session, output to files: one that starts anyway is killed whole)."""
    serve_cases = [c.values for c in CASES if c.values[0] == "serve"]
    procs = []
    for i, (_, dest, value, env) in enumerate(serve_cases):
        port = _free_port()
        home = tmp_path / str(i)
        home.mkdir()
        argv = [_fill(w, home, port) for w in BASELINE["serve"]]
        if dest is not None:
            argv = _replace(argv, "serve", dest, _fill(value, world, port))
        full_env = {**os.environ, "PYTHONPATH": str(REPO),
                    **{k: _fill(v, world, port) for k, v in (env or {}).items()}}
        with open(home / "out", "w") as out, open(home / "err", "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "serialink", *argv], cwd=home, env=full_env,
                                    stdout=out, stderr=err, start_new_session=True)
        procs.append((argv, env, home, proc))
    started = []
    for argv, env, home, proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            started.append(f"{argv} {env}")
            continue
        # a wrong environment that serve does not read (none today) could let it start: all must refuse
        _check("serve", proc.returncode, (home / "out").read_text(), (home / "err").read_text(), must_fail=True,
               what=f"{argv} {env}")
    assert not started, f"serve started despite a wrong input: {started}"
    assert len(procs) >= 30


@pytest.mark.parametrize("argv,env", [
    (["serve", "--store", UNREACHABLE_REDIS], {}),
    (["serve", "--store", "bogus://x"], {}),
    (["serve", "--data-dir", "/proc/x"], {}),
    (["rules", "explain", f"https://id.gs1.org/01/{GTIN}", "--rules", "missing.yaml"], {}),
    (["rules", "diff", "{rules}", "{rules}", "--scans", "missing"], {}),
    (["config", "show"], {"SERIALINK_PORT": "abc"}),
    (["config", "show"], {"SERIALINK_CONFIG_DIR": "{badsettings}"}),
    (["mint", "--gtin", GTIN, "--count", "3", "--out", "out", "--store", UNREACHABLE_REDIS], {}),
    (["import", "{codes}", "--gtin", GTIN, "--store", UNREACHABLE_REDIS], {}),
], ids=["serve-redis-down", "serve-bogus-store", "serve-proc-data-dir", "explain-missing-rules",
        "diff-missing-scans", "port-abc", "bad-settings-yaml", "mint-redis-down", "import-redis-down"])
def test_the_reproductions_of_issue_12_are_one_line_and_exit_1(world, tmp_path, argv, env):
    port = _free_port()
    argv = [_fill(w, world, port) for w in argv]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "SERIALINK_PORT": str(port),
                **{k: _fill(v, world, port) for k, v in env.items()}}
    run = subprocess.run([sys.executable, "-m", "serialink", *argv], cwd=tmp_path, env=full_env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"serialink {_command_of(argv)}: "), run.stderr


def test_verbose_adds_the_traceback(world, tmp_path):
    run = subprocess.run([sys.executable, "-m", "serialink", "--verbose", "serve", "--store", "bogus://x"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1 and "Traceback" in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("serialink serve: store_url: unknown scheme")
