"""Rules files can never stop a resolver (issue 12, section 1).

Reproduction: a route with ``from: "01.12.2026"`` (or ``"2026-13-01T00:00:00Z"``, ``""``,
an RFC 3339 value Python's parser refuses such as ``2026-12-01t00:00:00z``) passed the
schema and then raised ValueError: `serialink rules check` printed a traceback, the rules
watcher of a running server died silently, and a restart crash-looped.

Here: a table of date values through `serialink rules check` (refused at file:line:column,
or accepted and compiled); property tests that generated rule documents — and the example
file with random text spliced in — either pass check and load (and answer scans), or fail
check with a location, never anything else; the watcher in a running app reports a bad
file on /readyz and /metrics and picks up the next good one. The Granian end-to-end case
(SIGHUP and a restart with a bad file) is in tests/test_resolver_granian.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ext import parse
from resolver.rules.compiler import ROLES, STATES, compile_rules, default_rules_file, load_rules
from resolver.rules.dates import timestamp_ms
from resolver.rules.holder import RulesHolder
from resolver.rules.linktypes import RESOLVER_ONLY, vocabulary
from resolver.scan.decide import ScanRequest, UnitFacts, decide
from resolver.scan.negotiate import Preferences
from serialink.cli import main as serialink_main
from tests.resolver_fixtures import running_resolver

EXAMPLE = default_rules_file().read_text()
WINDOWED = "        when: {role: regulator}\n        link: gs1:dpp\n"
LOCATION = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning): ")


def with_from(value: str) -> str:
    """The example rules with ``from: <value>`` (YAML source text) on the regulator route."""
    assert WINDOWED in EXAMPLE
    return EXAMPLE.replace(WINDOWED, f"        when: {{role: regulator, from: {value}}}\n        link: gs1:dpp\n", 1)


def check(path: Path) -> tuple[int, str]:
    """`serialink rules check PATH` in-process: (exit status, stdout + stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = serialink_main(["rules", "check", str(path)])
    return status, out.getvalue()


def assert_refused_with_locations(status: int, output: str, path: Path, text: str) -> list[re.Match]:
    assert status == 1, output
    assert "Traceback" not in output and "please report this" not in output, output
    found = [m for m in map(LOCATION.match, output.splitlines()) if m]
    assert any(m["severity"] == "error" for m in found), output
    lines = text.count("\n") + 1
    for m in found:
        assert m["file"] == str(path) and 1 <= int(m["line"]) <= lines and int(m["column"]) >= 1, m.group(0)
    return found


# -- the reproduction, through the real command --------------------------------------------------

@pytest.mark.parametrize("value, accepted", [
    ('"01.12.2026"', False), ('"2026-13-01T00:00:00Z"', False), ('""', False),
    # passes jsonschema's date-time check when rfc3339-validator is installed, then fromisoformat raised
    ('"2026-12-01t00:00:00z"', True),
])
def test_rules_check_on_the_reported_dates_refuses_at_their_line_or_accepts(tmp_path, value, accepted):
    path = tmp_path / "rules.yaml"
    path.write_text(with_from(value))
    result = subprocess.run([sys.executable, "-m", "serialink", "rules", "check", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    if accepted:
        assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr
        return
    assert result.returncode == 1, result.stdout
    line = with_from(value).splitlines().index(f"        when: {{role: regulator, from: {value}}}") + 1
    assert re.search(rf"^{re.escape(str(path))}:{line}:\d+: error: .*when\.from: ", result.stdout, re.M), result.stdout


# -- every date form: refused with a location and a useful reason, or compiled ---------------------

DATES = [
    # (YAML source of the value, accepted?, words the refusal must contain)
    ('"2026-12-01T00:00:00Z"', True, None),
    ('"2026-12-01T00:00:00+01:00"', True, None),
    ('"2026-12-01t00:00:00z"', True, None),  # RFC 3339 allows lower case; fromisoformat did not
    ('"2026-12-31T23:59:60Z"', True, None),  # a leap second: valid RFC 3339
    ('"2026-12-01T00:00:00.123456789Z"', True, None),
    ('"0001-01-01T00:00:00+01:00"', True, None),
    ('"9999-12-31T23:59:59-23:59"', True, None),
    ('"01.12.2026"', False, "ISO 8601 with a time zone"),
    ('"2026-13-01T00:00:00Z"', False, "not a real date"),
    ('"2026-02-30T00:00:00Z"', False, "not a real date"),
    ('"2026-12-01T24:00:00Z"', False, "not a real date"),
    ('""', False, "is not a date-time"),
    ('"2026-12-01T00:00:00"', False, "no time zone"),
    ('"2026-12-01"', False, "is not a date-time"),
    ('"2026-12-01 00:00:00Z"', False, "is not a date-time"),
    ('"2026-W49-2T00:00:00Z"', False, "is not a date-time"),
    ('"2026-12-01T00:00:00+24:00"', False, "out of range"),
    ('"٢٠٢٦-١٢-٠١T00:00:00Z"', False, "is not a date-time"),
    ("2026-12-01", False, "quote this date"),
    ("2026-12-01T00:00:00Z", False, "quote this date"),
    ("2026-12-01 10:00:00", False, "quote this date"),
    ("20261201", False, "is not of type 'string'"),
    ("null", False, "is not of type 'string'"),
]


@pytest.mark.parametrize("value, accepted, words", DATES)
def test_every_date_form_is_refused_with_a_location_or_compiles(tmp_path, value, accepted, words):
    path = tmp_path / "rules.yaml"
    text = with_from(value)
    path.write_text(text)
    status, output = check(path)
    if accepted:
        assert status == 0, output
        rules = RulesHolder(path, tmp_path / "var").current
        windowed = [r for r in rules.product_for("09506000134352").routes if r.start_ms is not None]
        again = [r for r in compile_rules(text, "x").product_for("09506000134352").routes if r.start_ms is not None]
        assert len(windowed) == 1 and windowed[0].start_ms == again[0].start_ms
    else:
        found = assert_refused_with_locations(status, output, path, text)
        line = text.splitlines().index(f"        when: {{role: regulator, from: {value}}}") + 1
        assert any(int(m["line"]) == line and words in m.string for m in found), output


# -- generated rule files: pass check and load, or fail check with a location --------------------------

NASTY = ["", " ", "\t", "{", "}", "{serial", "{nope}", "\\", "%", "%00", "\x00", "\u3002", "\uff0e", "é", "..",
         "/..", "@", "#", "?", "null", "~", "- x", ": x", "&a", "*a", "\ufeff", "x" * 300, 0, -1, 3.5, True, None,
         [], {}, ["x"], {"x": 1}, dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 10, 0),
         *(v.strip('"') for v, _, _ in DATES),
         *(f"https://{h}/x" for h in ("evil.example.net", "www.example.com.evil.net", "127.1", "www\u3002example.com",
                                     "evil.example.net\\@www.example.com", "www.exa%6dple.com", "[::1]", "xn--zz"))]
LINK_TYPES = sorted(set(vocabulary()) - set(RESOLVER_ONLY))
PATHS = ["", "/", "/p/{gtin}", "/r/{gtin}/{serial}", "/l/{lot}?x={serial}", "/{ai:17}", "/a/{serial}#{lot}",
         "?q={tpx}&c={cpv}", "/{expiry}/{ai:235}", "/x/../y", "/%7Euser/{gtin}"]
HOSTS = ["www.example.com", "example.com", "dpp.example.com", "WWW.Example.COM", "www.example.com:8443"]
texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
hrefs = st.builds(lambda h, p: f"https://{h}{p}", st.sampled_from(HOSTS), st.sampled_from(PATHS))


def _rfc3339(moment: dt.datetime, style: int) -> str:
    text = moment.isoformat()
    if style == 1:
        text = text.replace("T", "t").replace("+00:00", "z")
    elif style == 2 and moment.second == 59:
        text = text[:17] + "60" + text[19:]  # a leap second
    return text


dates = st.builds(_rfc3339, st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                                         timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))])),
                  st.integers(0, 2))
languages = st.sampled_from(["en", "de", "de-CH", "FR"])
contexts = st.sampled_from(["consumer", "a:b", "x_1.2"])
links = st.fixed_dictionaries(
    {"type": st.sampled_from(LINK_TYPES), "href": hrefs, "title": texts},
    optional={"lang": st.lists(languages, max_size=2, unique=True), "media": st.sampled_from(["text/html"]),
              "context": st.lists(contexts, max_size=2, unique=True),
              "roles": st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True)})


@st.composite
def whens(draw) -> dict:
    when = draw(st.fixed_dictionaries({}, optional={
        "role": st.one_of(st.sampled_from(ROLES), st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True)),
        "state": st.lists(st.sampled_from(STATES + ("recalled", "stolen")), min_size=1, max_size=3, unique=True),
        "link_type": st.one_of(st.sampled_from(["none", "any"]), st.sampled_from(LINK_TYPES)),
        "lang": st.one_of(languages, st.lists(languages, min_size=1, max_size=2)),
        "context": contexts}))
    window = draw(st.lists(dates, max_size=2, unique=True))
    if len(window) == 2:
        window.sort(key=timestamp_ms)
        if timestamp_ms(window[0]) < timestamp_ms(window[1]):
            when["from"], when["until"] = window
    elif window:
        when[draw(st.sampled_from(["from", "until"]))] = window[0]
    return when


routes = st.one_of(
    st.fixed_dictionaries({"link": st.sampled_from(LINK_TYPES)}, optional={"name": texts, "when": whens()}),
    st.fixed_dictionaries({"href": hrefs, "title": texts}, optional={"name": texts, "when": whens()}))
GTIN_LEVEL = re.compile(r"\{(serial|lot|tpx|ai:235)\}")  # hrefs that are not: the default link needs one that is
GTINS = ["09506000134352", "09506000134369", "09506000134376", "00012345600012"]


@st.composite
def valid_documents(draw) -> dict:
    """Rule files the schema and every other check accept: they must pass and load."""
    products = []
    keys = draw(st.lists(st.one_of(st.sampled_from(GTINS).map(lambda g: ("gtin", g)),
                                   st.sampled_from(["9506000", "0001234"]).map(lambda c: ("company_prefix", c))),
                         max_size=3, unique=True))
    for field, key in keys:
        default = {"type": "gs1:pip", "href": draw(hrefs.filter(lambda h: GTIN_LEVEL.search(h) is None)), "title": draw(texts)}
        products.append({field: key, "name": draw(texts), "default": "gs1:pip",
                         "links": [default, *draw(st.lists(links, max_size=3))],
                         "routes": draw(st.lists(routes, max_size=4))})
    resolver = draw(st.fixed_dictionaries(
        {"root": st.sampled_from(["https://id.example.com", "http://127.0.0.1:8080"])},
        optional={"allowed_target_hosts": st.sampled_from([["example.com", "*.example.com"], ["*.example.com"], []]),
                  "allowed_target_schemes": st.sampled_from([["https"], ["https", "http"]]),
                  "cache_max_age": st.integers(0, 3600), "default_language": languages}))
    return {"version": 1, "resolver": resolver, "products": products}


def _leaves(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))


@st.composite
def mutated_documents(draw) -> dict:
    """A valid document with one value (anywhere) replaced by something hostile."""
    doc = draw(valid_documents())
    path = draw(st.sampled_from(list(_leaves(doc))))
    value = draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=20), st.integers()))
    if not path:
        return {"x": value}
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


def _passes_or_fails_with_a_location(tmp_path: Path, text: str) -> bool:
    """True: `rules check` passed, the file loads and answers scans; False: refused, at places."""
    path = tmp_path / "rules.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    status, output = check(path)
    if status == 1:
        assert_refused_with_locations(status, output, path, text)
        return False
    assert status == 0, output
    # it loads as a worker would, and answers a scan of every product for every role
    rules = RulesHolder(path, tmp_path / "var").current
    prefs = Preferences(("de",), None, ())
    for product in [*rules.by_gtin.values(), *rules.by_prefix.values()]:
        gtin = product.key if not product.by_prefix else _gtin_under(product.key)
        dl = parse(f"https://id.example.com/01/{gtin}/10/L%2E1/21/..?17=261231")
        for role in ROLES:
            for state in ("sold", "unknown"):
                for link_type in (None, "gs1:pip", "linkset"):
                    d = decide(rules, dl, role, UnitFacts(state, recalled=role == "owner"),
                               ScanRequest(link_type, prefs, 1_800_000_000_000))
                    assert d.status in (200, 300, 307, 404), d
                    for c in ((d.link,) if d.link else d.candidates):
                        assert c.href is not None and rules.target_problem(c.href) is None, c.href
    return True


def _gtin_under(prefix: str) -> str:
    from ext import compute_check_digit

    body = ("0" + prefix + "0" * 12)[:13]
    return body + str(compute_check_digit(body))


SLOW_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
@given(document=valid_documents())
def test_generated_valid_rule_files_pass_check_and_load(tmp_path, document):
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    assert _passes_or_fails_with_a_location(tmp_path, text), text


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(document=mutated_documents())
def test_generated_rule_files_with_a_hostile_value_pass_and_load_or_fail_with_a_location(tmp_path, document):
    _passes_or_fails_with_a_location(tmp_path, yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, len(EXAMPLE)), insert=st.one_of(st.sampled_from(
    ["2026-12-01", "&a [*a]", "\t", ": :", "{", "- ", "\n  - x\n", "from: 2026-12-01\n", "'", '"', "\x00", "\ufeff",
     "\\", "\u3002", "!!python/object:os.system x"]), st.text(max_size=12)))
def test_the_example_file_with_text_spliced_in_passes_or_fails_with_a_location(tmp_path, at, insert):
    _passes_or_fails_with_a_location(tmp_path, EXAMPLE[:at] + insert + EXAMPLE[at:])


def test_recursive_and_exponential_aliases_are_refused_with_a_location(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg"))
    for text in ("version: 1\nresolver: &r {root: https://id.example.com, x: *r}\nproducts: []\n", bomb,
                 "products: " + "[" * 3000 + "]" * 3000 + "\n"):
        path = tmp_path / "rules.yaml"
        path.write_text(text)
        assert_refused_with_locations(*check(path), path, text)


# -- the watcher in a running app: a bad file is visible, a later good one loads ---------------------------

def test_a_bad_file_makes_readyz_say_stale_and_the_next_good_file_loads(tmp_path):
    with running_resolver(tmp_path) as r:
        first = r.get("/readyz").json()
        assert first["status"] == "ready" and first["rules_status"] == "current", first
        r.rules_file.write_text(with_from('"01.12.2026"'))
        ready = wait_for(lambda: r.get("/readyz").json(), lambda j: j["status"] == "degraded")
        assert ready["rules"] == first["rules"], ready  # still serving the old version
        assert re.fullmatch(r"rules stale since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: .*rules\.yaml:\d+:\d+: error: "
                            r".*when\.from: .*", ready["rules_status"]), ready["rules_status"]
        assert r.get("/readyz?strict=1").status_code == 503
        metrics = r.get("/metrics").text
        assert re.search(r'serialink_rules_reloads_total{outcome="rejected"} [1-9]', metrics), metrics
        assert "serialink_rules_stale 1.0" in metrics
        # the watcher is alive: a valid edit (a lower-case RFC 3339 date, once a fatal ValueError) loads
        r.rules_file.write_text(with_from('"2026-12-01t00:00:00z"').replace("cache_max_age: 30", "cache_max_age: 31"))
        ready = wait_for(lambda: r.get("/readyz").json(), lambda j: j["status"] == "ready")
        assert ready["rules"] != first["rules"] and ready["rules_status"] == "current"
        assert r.services.rules.current.cache_max_age == 31
        assert "serialink_rules_stale 0.0" in r.get("/metrics").text


def test_a_worker_starting_on_a_bad_file_serves_the_last_good_copy_and_says_so(tmp_path):
    with running_resolver(tmp_path) as r:
        version = r.get("/readyz").json()["rules"]
        r.rules_file.write_text(with_from('"2026-02-30T00:00:00Z"'))
    with running_resolver(tmp_path, rules_text=with_from('"2026-02-30T00:00:00Z"')) as again:
        ready = again.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["rules"] == version, ready
        assert "serving the last good copy" in ready["rules_status"] and "not a real date" in ready["rules_status"]
        assert again.get("/01/09506000134352").status_code == 307
        metrics = again.get("/metrics").text
        assert 'serialink_rules_reloads_total{outcome="last_good"} 1.0' in metrics
        assert f'serialink_rules_info{{version="{version}"}} 1.0' in metrics


def wait_for(get, done, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.05)


def test_serve_hands_its_compiled_rules_to_the_workers_once_and_only_for_the_same_text(tmp_path: Path) -> None:
    """serve compiles the file to check it, then forks workers that would compile it again
    (minutes for 100k products): a worker takes serve's copy while the file is unchanged."""
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_file().read_text(encoding="utf-8"), encoding="utf-8")
    checked = load_rules(path, hand_over=True)
    taken = load_rules(path)
    assert taken is checked
    assert load_rules(path) is not checked  # taken once: later loads compile
    handed = load_rules(path, hand_over=True)
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited after serve checked it\n", encoding="utf-8")
    edited = load_rules(path)
    assert edited is not handed and edited.version != handed.version == checked.version
