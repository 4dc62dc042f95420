"""Hostile input against the stores: bad URLs, unreachable servers, broken files,
concurrent retries. Every refusal is a clear error naming what is wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from twin.errors import InvalidInput, StoreError
from twin.events import Actor
from twin.store import open_store

pytestmark = pytest.mark.anyio
GTIN = "09506000134352"
LINE = Actor("line", "line-1")


@pytest.mark.parametrize("url,field", [
    ("mysql://localhost/db", "store_url"),
    ("sqlite://", "store_url"),
    ("redis+cluster://no-port-here", "store_url"),
    ("sqlite:///tmp/x.db?durability=sloppy", "store_url.durability"),
])
async def test_a_bad_store_url_is_refused_naming_the_part(url: str, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        await open_store(url)
    assert err.value.field == field


async def test_bad_numbers_in_the_url_are_refused(redis_url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="store_url.feed_maxlen"):
        await open_store(f"sqlite:///{tmp_path / 'a.db'}?feed_maxlen=lots")
    with pytest.raises(InvalidInput, match="store_url.max_connections"):
        await open_store(f"{redis_url}?max_connections=-1")
    with pytest.raises(InvalidInput, match="store_url.prefix"):
        await open_store(f"{redis_url}?prefix=has{{brace}}")


async def test_an_unreachable_redis_is_a_store_error_without_the_password() -> None:
    from tests.redis_fixtures import free_port

    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreError) as err:
        await open_store(url)
    assert "cannot connect" in str(err.value) and "s3cret" not in str(err.value)


async def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(StoreError, match="garbage.db: cannot open the store"):
        await open_store(f"sqlite:///{path}")
    assert path.read_bytes().startswith(b"this is not")  # left as it was


async def test_concurrent_retries_of_one_request_get_one_range(store: Any) -> None:
    batches = await asyncio.gather(
        *(store.allocate_range(GTIN, "eu", 100, "same-request", "digest", actor=LINE) for _ in range(20))
    )
    assert len({b.id for b in batches}) == 1
    assert [r.start for r in await store.batch_ranges(GTIN, "eu")] == [0]


async def test_a_closed_store_refuses_work_clearly(store: Any) -> None:
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.allocate_range(GTIN, "eu", 1, "r", "d", actor=LINE)
    with pytest.raises(StoreError, match="closed"):
        await store.get_unit(GTIN, "S1")
    await store.close()  # closing twice is harmless


async def test_a_key_prefix_keeps_the_gtin_hash_tag(redis_url: str) -> None:
    store = await open_store(f"{redis_url}?prefix=ok.prefix-1")
    try:
        assert store.keys.unit(GTIN, "S").startswith("ok.prefix-1:{09506000134352}:")
    finally:
        await store.close()
