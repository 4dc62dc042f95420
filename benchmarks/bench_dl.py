"""Digital Link parsing speed against biip, in one run on one core.

1. parse+validate of a realistic mix (GTIN only, GTIN+serial, +lot+expiry, custom
   stem, SSCC, GIAI): per-URI time of ext.dl.parse vs biip's GS1DigitalLinkURI.parse
   on the same URIs (target: ≥ 40× faster).
2. `serialink parse - --json` over 1M URIs on stdin, end to end, with its peak RSS
   (and the RSS for 100k URIs, to show memory stays flat), beside biip doing the same
   job — read lines, parse, write one JSON object per line — on a 50k-line sample
   (target: ≥ 300k URIs/s).

    python -m pytest benchmarks/bench_dl.py --benchmark-only -s

Set SERIALINK_BENCH_LINES to change the 1M.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from biip.gs1_digital_link_uris import GS1DigitalLinkURI

from ext.dl import parse
from ext.linters import compute_check_digit

LINES = int(os.environ.get("SERIALINK_BENCH_LINES", "1000000"))
BIIP_LINES = 50_000


def _gtin(rng: random.Random) -> str:
    body = "0950600" + f"{rng.randrange(10**6):06d}"
    return body + compute_check_digit(body)


def realistic_uris(count: int, seed: int = 7) -> list[str]:
    """A scan-like mix: mostly serialised GTINs, some lots and expiry, custom stems, SSCC, GIAI."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        gtin, serial = _gtin(rng), f"{rng.randrange(36**8):X}"
        kind = i % 6
        if kind == 0:
            out.append(f"https://id.gs1.org/01/{gtin}")
        elif kind == 1:
            out.append(f"https://id.gs1.org/01/{gtin}/21/{serial}")
        elif kind == 2:
            out.append(f"https://id.gs1.org/01/{gtin}/10/L{rng.randrange(9999)}/21/{serial}?17=2712{rng.randrange(1, 29):02d}")
        elif kind == 3:
            out.append(f"https://brand.example.com/products/01/{gtin}/21/{serial}")
        elif kind == 4:
            body = "09506000" + f"{rng.randrange(10**9):09d}"
            out.append(f"https://id.gs1.org/00/{body}{compute_check_digit(body)}")
        else:
            out.append(f"https://id.gs1.org/8004/0950600013435{serial}")
    return out


MIX = realistic_uris(600)
RESULTS: dict[str, float] = {}


def _parse_all_serialink(uris):
    for uri in uris:
        parse(uri)


def _parse_all_biip(uris):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for uri in uris:
            GS1DigitalLinkURI.parse(uri)


@pytest.mark.benchmark(group="dl-parse-mix")
def test_parse_mix_serialink(benchmark):
    benchmark(_parse_all_serialink, MIX)
    RESULTS["serialink_us"] = benchmark.stats.stats.mean / len(MIX) * 1e6
    benchmark.extra_info["us_per_uri"] = RESULTS["serialink_us"]


@pytest.mark.benchmark(group="dl-parse-mix")
def test_parse_mix_biip(benchmark):
    benchmark.pedantic(_parse_all_biip, args=(MIX,), rounds=5, iterations=1)
    RESULTS["biip_us"] = benchmark.stats.stats.mean / len(MIX) * 1e6
    benchmark.extra_info["us_per_uri"] = RESULTS["biip_us"]
    if "serialink_us" in RESULTS:
        ratio = RESULTS["biip_us"] / RESULTS["serialink_us"]
        benchmark.extra_info["serialink_speedup"] = ratio
        print(f"\nparse+validate mix: serialink {RESULTS['serialink_us']:.3f} µs/URI, "
              f"biip {RESULTS['biip_us']:.1f} µs/URI → {ratio:.0f}× (target ≥ 40×)")


BIIP_JOB = r"""
import sys, warnings, orjson
warnings.simplefilter("ignore")
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
out = sys.stdout.buffer
for raw in sys.stdin.buffer:
    line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
    try:
        dl = GS1DigitalLinkURI.parse(line)
        elements = [(e.ai.ai, e.value) for e in dl.element_strings]
        out.write(orjson.dumps({"input": line, "valid": True, "elements": elements,
                                "element_string": dl.as_gs1_message().as_hri(),
                                "canonical": dl.as_canonical_uri()}) + b"\n")
    except Exception as exc:
        out.write(orjson.dumps({"input": line, "valid": False, "error": str(exc)}) + b"\n")
"""


def _vm_hwm_kib(pid: int) -> int:
    """The process's own peak RSS (VmHWM). ru_maxrss is useless here: a child forked
    from this (large) pytest process inherits its high-water mark."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _run_with_rss(cmd: list[str], stdin_path: Path) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in KiB and output lines of a command fed from a file."""
    with stdin_path.open("rb") as fin:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=fin, stdout=subprocess.PIPE)
        lines = 0
        peak = 0
        for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):
            lines += chunk.count(b"\n")
            peak = max(peak, _vm_hwm_kib(proc.pid))
        proc.wait()
        elapsed = time.perf_counter() - start
    return elapsed, peak, lines


@pytest.mark.benchmark(group="cli")
def test_cli_parse_stream_vs_biip(benchmark, tmp_path):
    uris = realistic_uris(LINES, seed=11)
    big, small, sample = tmp_path / "big.txt", tmp_path / "small.txt", tmp_path / "sample.txt"
    big.write_text("\n".join(uris) + "\n")
    small.write_text("\n".join(uris[: LINES // 10]) + "\n")
    sample.write_text("\n".join(uris[:BIIP_LINES]) + "\n")
    cli = [sys.executable, "-m", "serialink", "parse", "-", "--json"]

    def run_big():
        return _run_with_rss(cli, big)

    elapsed, rss_big, lines = benchmark.pedantic(run_big, rounds=3, iterations=1)
    assert lines == LINES
    best = benchmark.stats.stats.min
    _, rss_small, _ = _run_with_rss(cli, small)
    biip_elapsed, _, biip_lines = _run_with_rss([sys.executable, "-c", BIIP_JOB], sample)
    assert biip_lines == BIIP_LINES
    rate = LINES / best
    biip_rate = BIIP_LINES / biip_elapsed
    benchmark.extra_info.update({"uris_per_s": rate, "peak_rss_kib": rss_big, "peak_rss_kib_10pct": rss_small,
                                 "biip_uris_per_s": biip_rate})
    print(f"\nserialink parse - --json: {LINES:,} URIs in {best:.2f} s = {rate:,.0f} URIs/s (target ≥ 300k); "
          f"peak RSS {rss_big / 1024:.0f} MiB for {LINES:,} lines vs {rss_small / 1024:.0f} MiB for {LINES // 10:,}; "
          f"biip same job {biip_rate:,.0f} URIs/s ({biip_elapsed / BIIP_LINES * 1e6:.0f} µs/URI) → {rate / biip_rate:.0f}×")
