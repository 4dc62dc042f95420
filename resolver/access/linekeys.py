"""Line keys: a factory line's own long-lived API key, scoped to its site, its line and its products.

A packaging line runs for months and is configured once; a JWT that expires every few weeks
and must be pasted into a PLC gateway by hand is the wrong credential for it. A line key is
an opaque random string ``slk_<id>.<secret>`` (256 bits of secret), sent like a token as
``Authorization: Bearer slk_…``. The store keeps only its SHA-256 and its scope (site, line,
GTINs and/or company prefixes): the key is shown once, when it is made or rotated.

Rotation makes a new key with the same scope and lets the old one keep working for an
overlap window (default 24 h), so a line can be reconfigured without stopping; revocation
is immediate. Every API request reads the record from the store (a line posts a batch a
minute, not a scan a millisecond), so a revocation holds on every host at once.

>>> key_id, key = new_key()
>>> record = line_record(key_id, key, site="plant-1", line="L7", gtins=["09506000134352"], prefixes=[],
...                      subject="", created=1_750_000_000, created_by="operator")
>>> claims = check_key(record, key, now=1_750_000_060)
>>> claims.role, claims.allows_line("plant-1", "L7"), claims.allows_line("plant-1", "L8")
('line', True, False)
>>> retired = {**record, "retires": 1_750_000_100, "replaced_by": "k2"}
>>> state(retired, 1_750_000_060), state(retired, 1_750_000_200)
('retiring', 'retired')
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ext import verify_check_digit
from resolver.access.tokens import Claims
from resolver.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from twin.events import Actor

PREFIX = "slk_"
DEFAULT_OVERLAP = 24 * 3600
MAX_OVERLAP = 30 * 24 * 3600
NEVER = 253402300799  # 9999-12-31T23:59:59Z: a key without an expiry
_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class LineKeyRefused(Unauthenticated):
    """A line key that proves nothing: unknown, revoked, retired or expired."""


def looks_like(credential: str | None) -> bool:
    """Is this bearer credential a line key (rather than a signed token)?"""
    return bool(credential) and credential.startswith(PREFIX)  # type: ignore[union-attr]


def new_key(key_id: str | None = None, secret: str | None = None) -> tuple[str, str]:
    """(id, key): random, or from the given parts (an API retry derives the same ones)."""
    key_id = key_id or secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}.{secret or secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str:
    """The id a key names (LineKeyRefused if it is not shaped like a line key)."""
    key_id, dot, secret = key[len(PREFIX):].partition(".")
    if not key.startswith(PREFIX) or not dot or not _ID.fullmatch(key_id) or not 20 <= len(secret) <= 100:
        raise LineKeyRefused("not a line key this resolver issued")
    return key_id


def check_scope(site: object, line: object, gtins: object, prefixes: object) -> tuple[str, str, list[str], list[str]]:
    """A line key's scope, validated: Invalid names the field at fault."""
    for field, value in (("site", site), ("line", line)):
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise Invalid("expected 1-40 characters of [A-Za-z0-9_-]", field)
    gtin_list = _strings(gtins, "gtins")
    prefix_list = _strings(prefixes, "prefixes")
    for i, g in enumerate(gtin_list):
        if not (len(g) == 14 and g.isdigit() and verify_check_digit(g)):
            raise Invalid("expected a 14-digit GTIN with its check digit", f"gtins[{i}]")
    for i, p in enumerate(prefix_list):
        if not (p.isdigit() and 4 <= len(p) <= 12):
            raise Invalid("expected a GS1 company prefix of 4-12 digits", f"prefixes[{i}]")
    if not (gtin_list or prefix_list):
        raise Invalid("name the products the line makes: gtins and/or prefixes", "gtins")
    return site, line, sorted(set(gtin_list)), sorted(set(prefix_list))  # type: ignore[return-value]


def _strings(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > 100 or not all(isinstance(v, str) for v in value):
        raise Invalid("expected a list of up to 100 strings", field)
    return list(value)


def line_record(key_id: str, key: str, *, site: str, line: str, gtins: Iterable[str], prefixes: Iterable[str],
                subject: str, created: int, created_by: str, ttl: int | None = None,
                replaces: str | None = None) -> dict[str, Any]:
    """What the store keeps about a line key: its scope and hash, never the key."""
    return {"id": key_id, "hash": key_hash(key), "site": site, "line": line, "gtins": sorted(set(gtins)),
            "prefixes": sorted(set(prefixes)), "subject": subject, "created": int(created),
            "created_by": created_by, "expires": int(created) + ttl if ttl else None, "retires": None,
            "replaces": replaces, "replaced_by": None, "revoked": None, "revoked_by": None, "reason": None}


def state(record: Mapping[str, Any], now: float) -> str:
    """active, retiring (rotated, in its overlap), retired, expired or revoked."""
    if record.get("revoked"):
        return "revoked"
    if record.get("expires") and now >= record["expires"]:
        return "expired"
    if record.get("retires"):
        return "retired" if now >= record["retires"] else "retiring"
    return "active"


def claims_of(record: Mapping[str, Any]) -> Claims:
    """The line key as the Claims every API endpoint checks (role ``line``)."""
    deadline = min(t for t in (record.get("expires"), record.get("retires"), NEVER) if t)
    return Claims(principal=record.get("subject") or f"line:{record['site']}/{record['line']}", role="line",
                  expires=int(deadline), token_id=record["id"], gtins=frozenset(record["gtins"]),
                  prefixes=tuple(record["prefixes"]), sites=frozenset([record["site"]]),
                  lines=frozenset([record["line"]]))


def check_key(record: Mapping[str, Any] | None, key: str, now: float | None = None) -> Claims:
    """The key's claims if ``record`` is its record and it still works; else LineKeyRefused."""
    now = time.time() if now is None else now
    if record is None or not hmac.compare_digest(str(record.get("hash", "")), key_hash(key)):
        raise LineKeyRefused("the line key is not known here (mistyped, or from another resolver)")
    current = state(record, now)
    if current == "revoked":
        raise LineKeyRefused(f"the line key was revoked on {iso(record['revoked'])}")
    if current == "expired":
        raise LineKeyRefused(f"the line key expired on {iso(record['expires'])}")
    if current == "retired":
        raise LineKeyRefused(f"the line key was rotated; it stopped working on {iso(record['retires'])} "
                             f"(use key {record.get('replaced_by')})")
    return claims_of(record)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def public(record: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """A record as listings show it: no hash, times as ISO 8601, the state spelled out."""
    now = time.time() if now is None else now
    out = {k: v for k, v in record.items() if k != "hash"}
    for name in ("created", "expires", "retires", "revoked"):
        if out.get(name):
            out[name] = iso(out[name])
    out["state"] = state(record, now)
    return out


def within(caller: Claims, record: Mapping[str, Any]) -> bool:
    """Does ``caller`` (a manufacturer or admin) cover every product of the key?"""
    if caller.role == "admin" or caller.all_products:
        return True
    return (all(caller.allows_gtin(g) for g in record["gtins"])
            and all(any(p.startswith(mine) for mine in caller.prefixes) for p in record["prefixes"]))


# -- store operations ------------------------------------------------------------------------


async def verify(store: Any, key: str, now: float | None = None) -> Claims:
    """The claims of a line key presented as a bearer credential."""
    return check_key(await store.get_line_key(key_id_of(key)), key, now)


async def add(store: Any, actor: Actor, *, site: object, line: object, gtins: object, prefixes: object,
              subject: str = "", ttl: int | None = None, parts: tuple[str, str] | None = None,
              audit: Mapping[str, Any] | None = None, caller: Claims | None = None) -> tuple[str, dict[str, Any], bool]:
    """Make a line key: (key, record, replayed). ``parts`` (id, secret) make it reproducible."""
    site, line, gtin_list, prefix_list = check_scope(site, line, gtins, prefixes)
    if not isinstance(subject, str) or len(subject) > 200 or not subject.isprintable():
        raise Invalid("expected up to 200 printable characters", "subject")
    if ttl is not None and not 3600 <= ttl <= 10 * 366 * 86400:
        raise Invalid("expected 1 hour to 10 years", "ttl")
    key_id, key = new_key(*(parts or (None, None)))
    record = line_record(key_id, key, site=site, line=line, gtins=gtin_list, prefixes=prefix_list, subject=subject,
                         created=int(time.time()), created_by=actor.principal, ttl=ttl)
    if caller is not None and not within(caller, record):
        raise Forbidden("the key names products outside your own scope", "gtins")
    stored, replayed = await store.add_line_key(key_id, record, actor, audit={"site": site, "line": line,
                                                                              **(audit or {})})
    if replayed and stored.get("hash") != record["hash"]:
        raise Conflict("this Idempotency-Key was used to make another line key", "Idempotency-Key")
    if replayed and {k: stored[k] for k in ("site", "line", "gtins", "prefixes", "subject")} != {
            k: record[k] for k in ("site", "line", "gtins", "prefixes", "subject")}:
        raise Conflict("this Idempotency-Key was used to make a line key with another scope", "Idempotency-Key")
    return key, stored, replayed


async def load(store: Any, key_id: str, caller: Claims | None = None) -> dict[str, Any]:
    if not isinstance(key_id, str) or not _ID.fullmatch(key_id):
        raise NotFound(f"no line key {key_id!r}", "key_id")
    record = await store.get_line_key(key_id)
    if record is None or (caller is not None and not within(caller, record)):
        raise NotFound(f"no line key {key_id!r}", "key_id")
    return record


async def rotate(store: Any, actor: Actor, key_id: str, overlap: int = DEFAULT_OVERLAP, *,
                 parts: tuple[str, str] | None = None, audit: Mapping[str, Any] | None = None,
                 caller: Claims | None = None) -> tuple[str, dict[str, Any], dict[str, Any], bool]:
    """A new key with the old one's scope; the old one works ``overlap`` seconds more.
    (new key, new record, old record, replayed)."""
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 0 <= overlap <= MAX_OVERLAP:
        raise Invalid(f"expected 0..{MAX_OVERLAP} seconds", "overlap")
    old = await load(store, key_id, caller)
    now = int(time.time())
    new_id, key = new_key(*(parts or (None, None)))
    if old.get("replaced_by") and old["replaced_by"] == new_id:  # a retry of this very rotation
        stored = await store.get_line_key(new_id)
        if stored is not None and stored.get("hash") == key_hash(key):
            return key, stored, old, True
    current = state(old, now)
    if current != "active":
        hint = f"; rotate {old['replaced_by']} instead" if old.get("replaced_by") else ""
        raise Conflict(f"line key {key_id} is {current}{hint}", "key_id")
    lifetime = old["expires"] - old["created"] if old.get("expires") else None
    record = line_record(new_id, key, site=old["site"], line=old["line"], gtins=old["gtins"],
                         prefixes=old["prefixes"], subject=old.get("subject", ""), created=now,
                         created_by=actor.principal, ttl=lifetime, replaces=key_id)
    stored, replayed = await store.add_line_key(new_id, record, actor, audit={"replaces": key_id, **(audit or {})})
    if replayed and stored.get("hash") != record["hash"]:
        raise Conflict("this Idempotency-Key was used for another rotation", "Idempotency-Key")
    retired = {**old, "retires": now + overlap, "replaced_by": new_id}
    await store.set_line_key(key_id, retired, actor, "linekey:rotate",
                             audit={"replaced_by": new_id, "overlap": overlap, **(audit or {})})
    return key, stored, retired, False


async def revoke(store: Any, actor: Actor, key_id: str, reason: str, *, audit: Mapping[str, Any] | None = None,
                 caller: Claims | None = None) -> tuple[dict[str, Any], bool]:
    """Stop a key now: (record, already revoked before)."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        raise Invalid("say why (1-1000 characters)", "reason")
    record = await load(store, key_id, caller)
    if record.get("revoked"):
        return record, True
    revoked = {**record, "revoked": int(time.time()), "revoked_by": actor.principal, "reason": reason}
    await store.set_line_key(key_id, revoked, actor, "linekey:revoke", audit={"reason": reason[:300], **(audit or {})})
    return revoked, False


async def listing(store: Any, caller: Claims | None = None) -> list[dict[str, Any]]:
    now = time.time()
    return [public(r, now) for r in await store.line_keys() if caller is None or within(caller, r)]
