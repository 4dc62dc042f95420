"""`serialink import`: a national issuer's list becomes a batch the resolver verifies."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from serializer.keys import KeyStore
from serializer.profiles import load_profiles
from serializer.verify import SerialVerifier
from twin.store import open_store

GTIN = "09506000134352"


def serialink(*args, env=None):
    return subprocess.run([sys.executable, "-m", "serialink", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_import_a_list_file_then_verify_and_retry(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'twin.db'}"
    codes = tmp_path / "issuer.txt"
    codes.write_text(f"# issued by the national issuer\n{GTIN},ru-AbC123xyz01\n(01){GTIN}(21)ru-AbC123xyz02\n"
                     f"https://id.gs1.org/01/{GTIN}/21/ru-AbC123xyz03\n")
    args = ["import", str(codes), "--gtin", GTIN, "--store", store_url, "--key-dir", str(tmp_path / "keys"),
            "--lot", "L7"]
    first = serialink(*args)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["count"] == 3 and result["gtin"] == GTIN
    again = serialink(*args)
    assert json.loads(again.stdout)["batch_id"] == result["batch_id"]  # a retry, not a second batch

    async def verify():
        async with await open_store(store_url) as store:
            verifier = SerialVerifier(store, KeyStore(tmp_path / "keys"), load_profiles())
            return (await verifier.issued_by(GTIN, "ru-AbC123xyz02"), await verifier.issued_by(GTIN, "ru-NOPE"))

    hit, miss = asyncio.run(verify())
    assert hit.batch_id == result["batch_id"] and hit.batch.lot == "L7" and miss is None


def test_a_bad_line_is_refused_by_number_and_nothing_is_stored(tmp_path):
    store_url = f"sqlite:///{tmp_path / 'twin.db'}"
    codes = tmp_path / "issuer.txt"
    codes.write_text(f"{GTIN},OK1\n{GTIN},bad serial with spaces\n")
    result = serialink("import", str(codes), "--gtin", GTIN, "--store", store_url, "--key-dir", str(tmp_path / "k"))
    assert result.returncode == 1 and "line 2" in result.stderr

    async def batches():
        async with await open_store(store_url) as store:
            return await store.list_batches(GTIN)

    assert asyncio.run(batches()) == []
    other = tmp_path / "other.txt"
    other.write_text("04012345000009,X1\n")
    wrong = serialink("import", str(other), "--gtin", GTIN, "--store", store_url, "--key-dir", str(tmp_path / "k"))
    assert wrong.returncode == 1 and "not the batch's GTIN" in wrong.stderr
