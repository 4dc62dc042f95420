"""Per-GTIN serial keys and the GTIN's serial sources, kept outside the rule files.

Every GTIN has one record, a 0600 JSON file ``<key dir>/<gtin>.json``: the secret key of
its serial permutation (32 random bytes), the serial profiles bound to it and the shapes of
the serials imported for it. Binding happens under a per-GTIN lock *before* any range is
allocated, which is what keeps two sources of serials for one GTIN from ever colliding:

* a profile is bound only if its serial format is disjoint from every profile already
  bound (different length, or a position where their characters cannot meet) — so
  ``sequential-numeric`` and ``sgtin-96``, both 12 digits, never share a GTIN;
* a profile is bound only if no imported serial could lie in its format, and imported
  serials are accepted only if they lie outside every bound profile's format;
* the bound definition is remembered, so a profile edited after it issued serials is
  refused instead of silently minting (and verifying) different serials.

A key is never rotated once a randomised profile is bound: two keys are two permutations
whose serials may collide.

>>> import tempfile
>>> from serializer.keys import KeyStore
>>> from serializer.profiles import load_profiles
>>> profiles = load_profiles()
>>> keys = KeyStore(tempfile.mkdtemp())
>>> record = keys.bind_profile("09506000134352", profiles["default"])
>>> record.profile_names, len(keys.key("09506000134352"))
(('default',), 32)
>>> keys.bind_profile("09506000134352", profiles["eu-fmd"]).profile_names  # 14 chars: disjoint
('default', 'eu-fmd')
>>> keys.bind_profile("09506000134352", profiles["chestny-znak"]).profile_names
('chestny-znak', 'default', 'eu-fmd')
>>> keys.bind_profile("09506000134359", profiles["sgtin-96"]).profile_names
('sgtin-96',)
>>> keys.bind_profile("09506000134359", profiles["sequential-numeric"])
Traceback (most recent call last):
...
serializer.errors.SourceConflict: profile: 'sequential-numeric' cannot serve GTIN 09506000134359: its serials could equal those of profile 'sgtin-96' already bound to it (both are 12 characters and no position tells them apart); use another GTIN or a profile with a distinct length or prefix

Multi-host deployments share one key directory: mount it from a filesystem with POSIX
locks (NFSv4, CephFS, …) on every minting host, readable by the resolver hosts (they only
read), and back it up with the store — a lost key leaves issued serials unverifiable. A
host that should never create keys opens it with ``create=False``.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from serializer.errors import KeyMissing, KeyRotationRefused, KeyStoreError, SourceConflict
from serializer.profiles import SerialProfile

KEY_BYTES = 32
RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class BoundProfile:
    """What a profile was when it was bound: its name and the shape of its serials."""

    name: str
    fingerprint: str
    alphabet: str
    length: int
    prefix: str
    mode: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint, "alphabet": self.alphabet,
                "length": self.length, "prefix": self.prefix, "mode": self.mode}


@dataclass(frozen=True, slots=True)
class GtinRecord:
    """One GTIN's key and serial sources. ``key`` never appears in repr or logs."""

    gtin: str
    key: bytes = field(repr=False)
    created_at: str
    profiles: tuple[BoundProfile, ...] = ()
    # imported serial shapes: length -> the characters seen at each position
    import_shapes: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def profile_names(self) -> tuple[str, ...]:
        return tuple(sorted(p.name for p in self.profiles))

    def bound(self, name: str) -> BoundProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def to_json(self) -> bytes:
        body = {
            "version": RECORD_VERSION, "gtin": self.gtin, "created_at": self.created_at,
            "key": base64.b64encode(self.key).decode(),
            "profiles": [p.as_json() for p in sorted(self.profiles, key=lambda p: p.name)],
            "import_shapes": {str(k): list(v) for k, v in sorted(self.import_shapes.items())},
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> GtinRecord:
        try:
            body = orjson.loads(raw)
            key = base64.b64decode(body["key"], validate=True)
            profiles = tuple(BoundProfile(**p) for p in body.get("profiles", ()))
            shapes = {int(k): tuple(v) for k, v in body.get("import_shapes", {}).items()}
            record = cls(body["gtin"], key, body["created_at"], profiles, shapes)
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError("key_dir", f"{where} is unreadable: {exc}") from None
        if len(record.key) < 16:
            raise KeyStoreError("key_dir", f"{where} holds a key of {len(record.key)} bytes")
        return record


def profile_fingerprint(profile: SerialProfile) -> str:
    """Everything that decides which serial a counter becomes (not name or description)."""
    shape = [profile.alphabet, profile.length, profile.mode, profile.prefix, str(profile.low), str(profile.high)]
    return hashlib.sha256(orjson.dumps(shape)).hexdigest()[:32]


def position_sets(profile: SerialProfile | BoundProfile) -> tuple[frozenset[str], ...]:
    """The characters each position of the profile's serials can hold."""
    body = frozenset(profile.alphabet)
    return tuple(frozenset(ch) for ch in profile.prefix) + (body,) * (profile.length - len(profile.prefix))


def formats_overlap(a: SerialProfile | BoundProfile, b: SerialProfile | BoundProfile) -> bool:
    """Could a serial of ``a`` equal one of ``b``? Conservative: True unless provably not."""
    if a.length != b.length:
        return False
    return all(x & y for x, y in zip(position_sets(a), position_sets(b)))


def shape_overlaps(profile: SerialProfile | BoundProfile, shapes: Mapping[int, tuple[str, ...]]) -> bool:
    seen = shapes.get(profile.length)
    if seen is None:
        return False
    return all(set(chars) & allowed for chars, allowed in zip(seen, position_sets(profile)))


def in_format(profile: SerialProfile | BoundProfile, serial: str) -> bool:
    """Could ``serial`` be one of the profile's serials (length, prefix, alphabet)?"""
    if len(serial) != profile.length or not serial.startswith(profile.prefix):
        return False
    alphabet = profile.alphabet
    return all(ch in alphabet for ch in serial[len(profile.prefix):])


class KeyStore:
    """A directory of per-GTIN records. Thread- and process-safe (flock per GTIN)."""

    def __init__(self, directory: str | Path, *, create: bool = True) -> None:
        self.directory = Path(directory)
        self.create = create
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- reading ------------------------------------------------------------------------
    def path(self, gtin: str) -> Path:
        _check_gtin(gtin)
        return self.directory / f"{gtin}.json"

    def record(self, gtin: str) -> GtinRecord | None:
        path = self.path(gtin)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        return GtinRecord.from_json(raw, str(path))

    def key(self, gtin: str) -> bytes:
        """The GTIN's key, created on first use (when this store may create keys)."""
        record = self.record(gtin)
        if record is None:
            record = self._update(gtin, lambda current: current)
        return record.key

    # -- binding ------------------------------------------------------------------------
    def bind_profile(self, gtin: str, profile: SerialProfile) -> GtinRecord:
        """Make ``profile`` a source of serials for ``gtin`` (idempotent), or refuse with
        SourceConflict if its serials could collide with another source's."""
        fingerprint = profile_fingerprint(profile)
        current = self.record(gtin)
        if current is not None:
            bound = current.bound(profile.name)
            if bound is not None:
                _same_definition(gtin, profile, bound, fingerprint)
                return current

        def bind(record: GtinRecord) -> GtinRecord:
            bound = record.bound(profile.name)
            if bound is not None:
                _same_definition(gtin, profile, bound, fingerprint)
                return record
            for other in record.profiles:
                if formats_overlap(profile, other):
                    raise SourceConflict("profile", (
                        f"{profile.name!r} cannot serve GTIN {gtin}: its serials could equal those "
                        f"of profile {other.name!r} already bound to it ("
                        + (f"both are {profile.length} characters and no position tells them apart"
                           ) + "); use another GTIN or a profile with a distinct length or prefix"))
            if shape_overlaps(profile, record.import_shapes):
                raise SourceConflict("profile", (
                    f"{profile.name!r} cannot serve GTIN {gtin}: serials imported for it have "
                    f"the same shape ({profile.length} characters of its alphabet), so minted "
                    f"ones could repeat them"))
            entry = BoundProfile(profile.name, fingerprint, profile.alphabet, profile.length,
                                 profile.prefix, profile.mode)
            return _replace(record, profiles=record.profiles + (entry,))

        return self._update(gtin, bind)

    def bind_imports(self, gtin: str, serials: Iterable[str]) -> GtinRecord:
        """Record the shapes of imported serials, refusing any that a bound profile could
        mint (SourceConflict names the first)."""
        serials = list(serials)

        def bind(record: GtinRecord) -> GtinRecord:
            for i, serial in enumerate(serials):
                for bound in record.profiles:
                    if in_format(bound, serial):
                        raise SourceConflict(f"serials[{i}]", (
                            f"{serial!r} has the format of profile {bound.name!r}, which mints "
                            f"serials for GTIN {gtin}: it could be minted here too"))
            shapes = {k: list(v) for k, v in record.import_shapes.items()}
            for serial in serials:
                seen = shapes.setdefault(len(serial), [""] * len(serial))
                for pos, ch in enumerate(serial):
                    if ch not in seen[pos]:
                        seen[pos] = "".join(sorted(seen[pos] + ch))
            frozen = {k: tuple(v) for k, v in shapes.items()}
            if frozen == dict(record.import_shapes):
                return record
            return _replace(record, import_shapes=frozen)

        return self._update(gtin, bind)

    def rotate(self, gtin: str) -> GtinRecord:
        """A new key for a GTIN — refused once a randomised profile is bound, since its
        serials (issued or about to be) are a permutation under the current key."""

        def rotate(record: GtinRecord) -> GtinRecord:
            randomised = [p.name for p in record.profiles if p.mode == "randomised"]
            if randomised:
                raise KeyRotationRefused("gtin", (
                    f"the key of {gtin} underlies the serials of profile(s) {', '.join(randomised)}: "
                    f"a new key would make them unverifiable and let new serials collide with them"))
            return _replace(record, key=secrets.token_bytes(KEY_BYTES))

        return self._update(gtin, rotate)

    # -- the one writer -----------------------------------------------------------------
    def _update(self, gtin: str, change: Callable[[GtinRecord], GtinRecord]) -> GtinRecord:
        """Read-modify-write the GTIN's record under a thread lock and a file lock."""
        path = self.path(gtin)
        with self._guard:
            lock = self._locks.setdefault(gtin, threading.Lock())
        with lock:
            if not self.create:
                current = self.record(gtin)
                if current is None:
                    raise KeyMissing("gtin", f"no key for {gtin} in {self.directory} and this host "
                                             f"does not create keys")
                updated = change(current)
                if updated != current:
                    raise KeyMissing("gtin", f"the record of {gtin} would change and this host "
                                             f"does not write keys")
                return current
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.directory / f".{gtin}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                current = self.record(gtin)
                if current is None:
                    current = GtinRecord(gtin, secrets.token_bytes(KEY_BYTES),
                                         datetime.now(UTC).isoformat(timespec="seconds"))
                    updated = change(current)
                else:
                    updated = change(current)
                    if updated == current:
                        return current
                _write_private(path, updated.to_json())
                return updated
            finally:
                os.close(fd)


def _replace(record: GtinRecord, **changes: Any) -> GtinRecord:
    values = {"gtin": record.gtin, "key": record.key, "created_at": record.created_at,
              "profiles": record.profiles, "import_shapes": record.import_shapes, **changes}
    return GtinRecord(**values)


def _same_definition(gtin: str, profile: SerialProfile, bound: BoundProfile, fingerprint: str) -> None:
    if bound.fingerprint != fingerprint:
        raise SourceConflict("profile", (
            f"profile {profile.name!r} has changed since it was bound to GTIN {gtin} "
            f"(alphabet, length, mode, prefix or bounds): its issued serials would no longer "
            f"verify; restore its definition or add a new profile"))


def _write_private(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically and durably (temp name, fsync, rename, fsync dir)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _check_gtin(gtin: object) -> None:
    if not (isinstance(gtin, str) and len(gtin) == 14 and gtin.isdigit() and gtin.isascii()):
        raise KeyStoreError("gtin", f"expected 14 digits, got {gtin!r}")
