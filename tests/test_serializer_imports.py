"""Externally issued codes: validated line by line, kept apart from minted ones, verified."""

from __future__ import annotations

import asyncio

import pytest

from serializer.errors import MintConflict, MintError
from serializer.imports import import_codes
from serializer.keys import KeyStore
from serializer.minting import BatchRequest, mint
from serializer.profiles import load_profiles
from serializer.verify import SerialVerifier
from twin.events import Actor
from twin.store import open_store

GTIN = "09506000134352"
ACTOR = Actor("manufacturer", "importer")


def test_imports_are_validated_kept_disjoint_and_verified(tmp_path):
    async def go():
        async with await open_store(f"sqlite:///{tmp_path}/twin.db") as store:
            keys, profiles = KeyStore(tmp_path / "keys"), load_profiles()
            minted = await mint(store, keys, profiles, BatchRequest.parse(
                {"gtin": GTIN, "count": 10, "profile": "default", "request_id": "m1"}), ACTOR)
            lines = [f"{GTIN},cz{i:04d}xyz" for i in range(50)] + [f"(01){GTIN}(21)cz-last"]
            batch = await import_codes(store, keys, GTIN, lines, "imp-1", ACTOR, lot="L9")
            assert batch.count == 51 and str(batch.kind) == "imported"
            verifier = SerialVerifier(store, keys, profiles)
            hit = await verifier.issued_by(GTIN, "cz0007xyz")
            assert hit.batch_id == batch.id and hit.counter is None
            assert (await verifier.issued_by(GTIN, minted.serial(3))).batch_id == minted.batch.id
            for bad, field in [([f"{GTIN},ok1", "09506000134353,x"], "line 2"),
                               ([f"{GTIN},dup", f"{GTIN},dup"], "line 2"),
                               ([f"{GTIN},has space"], "line 1"),
                               (["04012345000009,x"], "line 1"),
                               # a serial the bound 'default' profile could mint
                               ([f"{GTIN},{minted.serial(0)}"], "serials[0]")]:
                with pytest.raises(MintError) as err:
                    await import_codes(store, keys, GTIN, bad, f"bad-{field}", ACTOR)
                assert err.value.field == field
            with pytest.raises(MintError) as err:
                await import_codes(store, keys, GTIN, [f"{GTIN},cz0001xyz"], "imp-2", ACTOR)
            assert err.value.field == "serials" and isinstance(err.value, MintConflict)
    asyncio.run(go())
