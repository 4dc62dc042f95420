"""`serialink dpp export`: DPP registry records for a GTIN's or a batch's units, as JSON Lines
and CSV, from a real store and real minted batches; bad input is a one-line error."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GTIN = "09506000134352"


def serialink(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "serialink", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_export_writes_one_registry_record_per_unit_as_jsonl_and_csv(tmp_path):
    store, keys = f"sqlite:///{tmp_path}/twin.db", str(tmp_path / "keys")
    minted = []
    for request_id, count in (("dpp-a", 7), ("dpp-b", 5)):
        run = serialink("mint", "--gtin", GTIN, "--count", str(count), "--format", "csv", "--out",
                        str(tmp_path / request_id), "--request-id", request_id, "--store", store, "--key-dir", keys,
                        "--no-progress", "--lot", "L7")
        assert run.returncode == 0, run.stderr
        minted += [line.split(",") for line in (tmp_path / request_id / "codes.csv").read_text().splitlines()[1:]]
    everything = serialink("dpp", "export", "--gtin", GTIN, "--store", store, "--key-dir", keys)
    assert everything.returncode == 0, everything.stderr
    records = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(records) == 12 and everything.stderr.strip() == "serialink dpp: 12 record(s)"
    first = records[0]
    assert first["uid"] == f"https://id.example.com/01/{GTIN}/21/{first['serial']}"
    assert first["resolver_endpoint"] == first["uid"] + "?linkType=gs1:dpp"
    assert first["dpp_api"] == f"https://id.example.com/v1/units/01/{GTIN}/21/{first['serial']}/dpp"
    assert (first["commodity_code"], first["lot"], first["product_name"]) == ("84031090", "L7",
                                                                              "Example X100 condensing boiler")
    assert sorted(r["serial"] for r in records) == sorted(row[1] for row in minted)  # exactly the minted serials
    batch_id = records[-1]["batch_id"]
    out = tmp_path / "one.csv"
    one = serialink("dpp", "export", "--batch", batch_id, "--format", "csv", "--out", str(out), "--store", store,
                    "--key-dir", keys)
    assert one.returncode == 0, one.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == sum(1 for r in records if r["batch_id"] == batch_id) and rows[0]["batch_id"] == batch_id
    assert [r["uid"] for r in rows] == [r["uid"] for r in records if r["batch_id"] == batch_id]


def test_bad_input_is_a_one_line_error(tmp_path):
    store = f"sqlite:///{tmp_path}/twin.db"
    for args, status, start in [(("--gtin", "123"), 2, "serialink dpp export: --gtin: expected a 14-digit GTIN"),
                                (("--batch", "nonsense"), 2, "serialink dpp export: --batch: expected"),
                                (("--gtin", GTIN), 1, "serialink dpp export: --gtin: no batch of GTIN"),
                                (("--batch", f"{GTIN}.default.0"), 1, "serialink dpp export: --batch: no batch")]:
        run = serialink("dpp", "export", *args, "--store", store, "--key-dir", str(tmp_path / "k"))
        assert run.returncode == status and run.stderr.startswith(start), (args, run.stderr)
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
