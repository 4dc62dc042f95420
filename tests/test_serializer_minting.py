"""Minting rules, keys, verification, concurrency, crashes and full disks — real SQLite,
real key files, real processes."""

from __future__ import annotations

import asyncio
import shutil
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from serializer.errors import (
    KeyRotationRefused,
    MintConflict,
    MintError,
    MintRefused,
    MintTooLarge,
    SourceConflict,
)
from serializer.keys import KeyStore
from serializer.minting import BatchRequest, mint
from serializer.profiles import load_profiles, parse_profiles
from serializer.verify import SerialVerifier
from twin.batch import BatchStatus
from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
ACTOR = Actor("line", "line-7")
ROOT = Path(__file__).resolve().parent.parent


def request(**kw):
    base = {"gtin": GTIN, "count": 100, "profile": "default", "request_id": "r1"}
    base.update(kw)
    return BatchRequest.parse(base)


async def _mint(tmp, req, profiles=None):
    async with await open_store(f"sqlite:///{tmp}/twin.db") as store:
        return await mint(store, KeyStore(Path(tmp) / "keys"), profiles or load_profiles(), req, ACTOR)


def test_a_profile_too_small_for_the_guess_ratio_is_refused(tmp_path):
    with pytest.raises(MintError) as err:
        asyncio.run(_mint(tmp_path, request(profile="sgtin-96", count=17_487_791 - 1 + 2)))
    assert err.value.field == "count" or err.value.field == "profile"
    assert isinstance(err.value, (MintTooLarge, MintRefused))
    small = parse_profiles("version: 1\nprofiles:\n  - {name: tiny, alphabet: '0123456789', length: 7, mode: randomised}\n")
    with pytest.raises(MintError) as err:
        asyncio.run(_mint(tmp_path, request(profile="tiny", count=1001, request_id="t"), small))
    assert err.value.field == "profile" and isinstance(err.value, MintRefused) and "1/10,000" in err.value.reason
    # 999 fit (10**7 / 10**4 = 1000, and the ratio must stay strictly below)
    assert asyncio.run(_mint(tmp_path, request(profile="tiny", count=999, request_id="t2"), small)).batch.count == 999
    with pytest.raises(MintError) as err:
        asyncio.run(_mint(tmp_path, request(profile="tiny", count=1, request_id="t3"), small))
    assert err.value.field == "count"


def test_request_fields_are_validated_by_name():
    for body, field in [({"gtin": "123"}, "gtin"), ({"count": "ten"}, "count"), ({"request_id": "has space"}, "request_id"),
                        ({"lot": "bad lot"}, "lot"), ({"site": "a/b"}, "site"), ({"expiry": "2027-02-30"}, "expiry")]:
        with pytest.raises(MintError) as err:
            request(**body)
        assert err.value.field == field
    assert request(gtin="9506000134352").gtin == GTIN  # GTIN-13 padded to 14


def test_keys_are_private_files_never_rotated_under_issued_serials(tmp_path):
    minted = asyncio.run(_mint(tmp_path, request()))
    keys = KeyStore(tmp_path / "keys")
    path = keys.path(GTIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert minted.key == keys.key(GTIN) and len(minted.key) == 32
    with pytest.raises(KeyRotationRefused):
        keys.rotate(GTIN)
    # a profile edited after it issued serials is refused, not silently re-mapped
    edited = parse_profiles((ROOT / "config" / "serial-profiles.yaml").read_text().replace("length: 12\n    mode: randomised", "length: 13\n    mode: randomised", 1))
    with pytest.raises(MintError) as err:
        asyncio.run(_mint(tmp_path, request(request_id="r2"), edited))
    assert err.value.field == "profile" and isinstance(err.value, MintConflict)
    fresh = KeyStore(tmp_path / "other")
    first = fresh.key("09506000134369")
    assert fresh.rotate("09506000134369").key != first  # nothing bound yet: allowed


def test_the_verifier_finds_the_batch_of_every_issued_serial_and_nothing_else(tmp_path):
    async def go():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
            a = await mint(store, keys, profiles, request(count=50, request_id="a"), ACTOR)
            verifier = SerialVerifier(store, keys, profiles)
            assert (await verifier.issued_by(GTIN, a.serial(7))).counter == 7
            b = await mint(store, keys, profiles, request(count=50, request_id="b", profile="eu-fmd"), ACTOR)
            # a batch minted after the cache was filled is found without invalidation
            match = await verifier.issued_by(GTIN, b.serial(49))
            assert (match.batch_id, match.profile, match.counter) == (b.batch.id, "eu-fmd", 49)
            unissued = a.permutation.encode(10_000)  # a well-formed serial no batch issued
            assert await verifier.issued_by(GTIN, unissued) is None
            assert await verifier.issued_by(GTIN, "NOT-A-SERIAL") is None
            await store.set_batch_status(a.batch.id, BatchStatus.VOIDED, ACTOR, "line jam")
            verifier.invalidate(GTIN)
            assert (await verifier.issued_by(GTIN, a.serial(0))).status == "voided"
    asyncio.run(go())



def test_the_verifier_keeps_a_bounded_number_of_batch_records_and_reads_the_rest_again(tmp_path):
    """Batch records are kept by their range's position in the index, at most as many as
    the verifier's bound: past it they are forgotten and read again, never answered wrong."""
    async def go():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
            minted = [await mint(store, keys, profiles, request(count=5, request_id=f"r{i}"), ACTOR) for i in range(7)]
            verifier = SerialVerifier(store, keys, profiles, max_gtins=3)
            reads = 0
            get_batch = store.get_batch

            async def counted(batch_id):
                nonlocal reads
                reads += 1
                return await get_batch(batch_id)

            store.get_batch = counted
            for _ in range(2):
                for m in minted:
                    for k in (0, 4):
                        match = await verifier.issued_by(GTIN, m.serial(k))
                        assert (match.batch_id, match.counter) == (m.batch.id, m.batch.start + k)
            assert reads > len(minted)  # 7 batches through a bound of 3: some were read again
            kept = sum(slot is not None for slots in verifier._gtins[GTIN].batches.values() for slot in slots)
            assert 0 < kept <= 3
            await store.set_batch_status(minted[6].batch.id, BatchStatus.VOIDED, ACTOR, "line jam")
            verifier.invalidate(GTIN)
            assert (await verifier.issued_by(GTIN, minted[6].serial(1))).status == "voided"
    asyncio.run(go())

def test_two_profiles_whose_serials_could_collide_never_share_a_gtin(tmp_path):
    keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
    keys.bind_profile(GTIN, profiles["sgtin-96"])
    with pytest.raises(SourceConflict):
        keys.bind_profile(GTIN, profiles["sequential-numeric"])
    with pytest.raises(SourceConflict):  # 12 characters of 0-9A-Z also spell every 12-digit serial
        keys.bind_profile(GTIN, profiles["default"])
    assert keys.bind_profile(GTIN, profiles["eu-fmd"]).profile_names == ("eu-fmd", "sgtin-96")


def _worker(args):
    url, tmp, worker, batches = args
    out = []

    async def go():
        async with await open_store(url) as store:
            keys, profiles = KeyStore(Path(tmp) / "keys"), load_profiles()
            for i in range(batches):
                count = 1 + (worker * 7919 + i * 104729) % 3000
                m = await mint(store, keys, profiles, request(count=count, request_id=f"w{worker}-{i}"), ACTOR)
                out.append((m.batch.start, m.batch.count, m.serials()))
    asyncio.run(go())
    return out


def test_eight_processes_minting_many_batches_never_overlap(tmp_path, store_url):
    """On every backend (SQLite file, Redis, Redis Cluster), across processes."""
    with ProcessPoolExecutor(8) as pool:
        jobs = [(store_url, str(tmp_path), w, 12) for w in range(8)]
        results = [r for chunk in pool.map(_worker, jobs) for r in chunk]
    assert len(results) == 96
    ranges = sorted((start, count) for start, count, _ in results)
    for (s1, c1), (s2, _) in zip(ranges, ranges[1:]):
        assert s1 + c1 <= s2, "two batches share counters"
    serials = [s for _, _, batch in results for s in batch]
    assert len(serials) == len(set(serials)) == sum(c for _, c in ranges)


def _cli(tmp: Path, out: Path, count: int, request_id: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "serialink", "mint", "--gtin", GTIN, "--count", str(count), "--format", "csv",
            "--out", str(out), "--request-id", request_id, "--store", f"sqlite:///{tmp}/twin.db",
            "--key-dir", str(tmp / "keys"), "--no-progress", *extra]


def test_sigkill_mid_batch_then_retry_completes_identically_and_reissues_nothing(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli(tmp_path, out, 3_000_000, "crash-1"), cwd=ROOT, stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        temps = list(out.glob(".codes.csv.tmp-*")) if out.exists() else []
        if temps and temps[0].stat().st_size > 20_000_000:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "codes.csv").exists() and not (out / "manifest.json").exists(), "a killed run left output looking complete"
    retry = subprocess.run(_cli(tmp_path, out, 3_000_000, "crash-1"), cwd=ROOT, capture_output=True, text=True)
    assert retry.returncode == 0, retry.stderr
    assert not list(out.glob(".*tmp*")), "the retry removes the dead attempt's temporaries"
    clean = subprocess.run(_cli(tmp_path, tmp_path / "clean", 3_000_000, "crash-1"), cwd=ROOT, capture_output=True)
    assert clean.returncode == 0
    assert (out / "codes.csv").read_bytes() == (tmp_path / "clean" / "codes.csv").read_bytes()
    other = subprocess.run(_cli(tmp_path, tmp_path / "other", 1000, "next-1"), cwd=ROOT, capture_output=True, text=True)
    import json
    dead, nxt = json.loads(retry.stdout)["range"], json.loads(other.stdout)["range"]
    assert nxt["start"] >= dead["end"], "a new batch reused counters of the killed one"
    with open(out / "codes.csv") as f:
        next(f)
        dead_serials = {line.split(",", 2)[1] for line in f}
    with open(tmp_path / "other" / "codes.csv") as f:
        next(f)
        assert not {line.split(",", 2)[1] for line in f} & dead_serials


def test_a_full_disk_fails_cleanly_naming_the_output(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    script = (f"mount -t tmpfs -o size=2m tmpfs {small} && exec " + " ".join(
        _cli(tmp_path, small / "out", 200_000, "full-1")))
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], cwd=ROOT,
                         capture_output=True, text=True)
    if "mount" in run.stderr and run.returncode != 1:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    assert run.returncode == 1 and run.stderr.startswith("serialink mint: out: "), run.stderr
    assert "free" in run.stderr or "disk full" in run.stderr
    # the writer itself on a full disk: ENOSPC mid-file leaves nothing behind
    code = ("import sys; from serializer.output import AtomicFile\nfrom serializer.errors import DiskFull\n"
            "try:\n"
            f"    with AtomicFile('{small}/big.bin', 'bin') as f:\n"
            "        [f.write(b'x' * (1 << 20)) for _ in range(8)]\n"
            "except DiskFull as e:\n"
            "    print(507, e.field, e.reason); sys.exit(3)\n")
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                          f"mount -t tmpfs -o size=2m tmpfs {small} && {sys.executable} -c \"{code}\" && ls -a {small}; "
                          f"echo LS; ls -a {small}"], cwd=ROOT, capture_output=True, text=True)
    assert run.stdout.startswith("507 out disk full"), run.stdout + run.stderr
    assert run.stdout.split("LS")[1].split() == [".", ".."]
