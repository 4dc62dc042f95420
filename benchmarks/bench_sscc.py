"""SSCC figures (a script, not a timed test): allocation round trips and label files.

    python benchmarks/bench_sscc.py --count 1000000 [--store sqlite:///…|redis://…]

Times, on a fresh SQLite store unless ``--store`` says otherwise: ``--requests`` small
allocations (10 SSCCs each, every one a durable write) and one retry of each (the
idempotent path), then ``--count`` SSCCs in one request written as ssccs.csv and
sscc-labels.zpl (``serializer.logistic_labels.produce``). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serializer.logistic_labels import produce  # noqa: E402
from serializer.sscc import SsccRequest, mint_ssccs  # noqa: E402
from twin.events import Actor  # noqa: E402
from twin.store import open_store  # noqa: E402

ACTOR = Actor("line", "bench")


async def run(store_url: str, count: int, requests: int, out: Path) -> dict:
    figures: dict = {"store": store_url.split(":", 1)[0], "count": count, "requests": requests}
    async with await open_store(store_url) as store:
        started = time.perf_counter()
        for i in range(requests):
            await mint_ssccs(store, SsccRequest.parse({"prefix": "9506000", "extension": 1, "count": 10,
                                                       "request_id": f"small-{i}"}), ACTOR)
        figures["allocations_per_s"] = round(requests / (time.perf_counter() - started))
        started = time.perf_counter()
        for i in range(requests):
            await mint_ssccs(store, SsccRequest.parse({"prefix": "9506000", "extension": 1, "count": 10,
                                                       "request_id": f"small-{i}"}), ACTOR)
        figures["retries_per_s"] = round(requests / (time.perf_counter() - started))
        big = await mint_ssccs(store, SsccRequest.parse({"prefix": "9506000", "extension": 2, "count": count,
                                                         "request_id": "big"}), ACTOR)
    for formats in (("csv",), ("zpl",)):
        started = time.perf_counter()
        await asyncio.to_thread(produce, big, "https://id.example.com", formats, out / formats[0])
        figures[f"{formats[0]}_labels_per_s"] = round(count / (time.perf_counter() - started))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--store", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{tmp}/twin.db"
        print(json.dumps(asyncio.run(run(url, args.count, args.requests, Path(tmp)))))


if __name__ == "__main__":
    main()
