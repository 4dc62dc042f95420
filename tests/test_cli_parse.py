"""`serialink parse` and `serialink convert`: the CLI contract other tools build on."""

import json
import subprocess
import sys

import pytest

GOOD = "https://id.gs1.org/01/09506000134352/21/ABC"
BAD_CHECK = "https://id.gs1.org/01/09506000134353/21/ABC"


def serialink(*args, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, "-m", "serialink", *args], input=data,
                          capture_output=True, timeout=120)


def test_json_line_for_a_valid_uri_matches_the_contract():
    result = serialink("parse", "--json", GOOD)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "input": GOOD,
        "valid": True,
        "elements": [["01", "09506000134352"], ["21", "ABC"]],
        "element_string": "(01)09506000134352(21)ABC",
        "canonical": "https://id.gs1.org/01/09506000134352/21/ABC",
    }


def test_an_invalid_uri_gives_valid_false_with_the_reason_and_exit_1():
    result = serialink("parse", "--json", BAD_CHECK)
    assert result.returncode == 1
    line = json.loads(result.stdout)
    assert line["input"] == BAD_CHECK and line["valid"] is False
    assert "AI (01)" in line["error"] and "check digit" in line["error"]
    assert set(line) == {"input", "valid", "error"}


def test_stdin_lines_answer_in_order_one_object_each_including_blank_and_garbage():
    lines = [GOOD, "", "not a uri", "https://example.com/p/01/09506000134352?17=271231&linkType=gs1:pip",
             "https://id.gs1.org/01/9506000134352", "\u00e9t\u00e9"]
    result = serialink("parse", "--json", "-", stdin="\n".join(lines) + "\n")
    assert result.returncode == 1
    out = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert [o["input"] for o in out] == lines
    assert [o["valid"] for o in out] == [True, False, False, True, False, False]
    assert out[3]["elements"] == [["01", "09506000134352"], ["17", "271231"]]
    assert out[3]["canonical"] == "https://id.gs1.org/01/09506000134352?17=271231"


def test_stdin_without_final_newline_and_crlf_lines():
    result = serialink("parse", "--json", "-", stdin=f"{GOOD}\r\n{GOOD}")
    assert result.returncode == 0
    assert [json.loads(x)["input"] for x in result.stdout.decode().splitlines()] == [GOOD, GOOD]


def test_invalid_utf8_on_stdin_is_an_invalid_line_not_a_crash():
    result = serialink("parse", "--json", "-", stdin=b"https://id.gs1.org/01/\xff\xfe\n" + GOOD.encode() + b"\n")
    out = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert [o["valid"] for o in out] == [False, True]
    assert result.returncode == 1


def test_lenient_pads_legacy_gtins_and_stem_changes_the_canonical_form():
    legacy = "https://brand.example.com/gtin/9506000134352/ser/ABC/"
    assert serialink("parse", "--json", legacy).returncode == 1
    result = serialink("parse", "--json", "--lenient", "--stem", "https://brand.example.com", legacy)
    assert result.returncode == 0
    line = json.loads(result.stdout)
    assert line["canonical"] == "https://brand.example.com/01/09506000134352/21/ABC"
    assert line["elements"] == [["01", "09506000134352"], ["21", "ABC"]]


def test_text_mode_shows_canonical_uri_and_element_string():
    result = serialink("parse", GOOD, BAD_CHECK)
    text = result.stdout.decode()
    assert result.returncode == 1
    assert "valid    https://id.gs1.org/01/09506000134352/21/ABC" in text
    assert "invalid  " + BAD_CHECK in text


@pytest.mark.parametrize("args", [["parse"], ["parse", "--bogus", GOOD], ["nope"], []])
def test_usage_errors_exit_2(args):
    assert serialink(*args).returncode == 2


def test_many_lines_stream_through(tmp_path):
    count = 50_000
    data = (GOOD + "\n") * count
    result = serialink("parse", "--json", "-", stdin=data)
    assert result.returncode == 0
    assert result.stdout.count(b"\n") == count


@pytest.mark.parametrize("data, args, expected", [
    ("(01)09506000134352(17)271231(10)ABC(21)X1", [],
     "https://id.gs1.org/01/09506000134352/10/ABC/21/X1?17=271231"),
    ("^01095060001343521727123110ABC^21X1", ["--stem", "https://example.com"],
     "https://example.com/01/09506000134352/10/ABC/21/X1?17=271231"),
    ("https://example.com/01/09506000134352/10/ABC/21/X1?17=271231", [],
     "(01)09506000134352(10)ABC(21)X1(17)271231"),
    ("https://example.com/01/09506000134352/21/X1", ["--to", "unbracketed"], "^010950600013435221X1"),
    ("(01)09506000134352(21)X1", ["--to", "scan"], "]d2010950600013435221X1"),
    ("(01)09506000134352(21)X1", ["--to", "hri"], "GTIN (01) 09506000134352\nSERIAL (21) X1"),
])
def test_convert(data, args, expected):
    result = serialink("convert", *args, data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().rstrip("\n") == expected


def test_convert_rejects_bad_data_with_reason():
    result = serialink("convert", "--json", "(01)09506000134353")
    assert result.returncode == 1
    assert "check digit" in json.loads(result.stdout)["error"]
