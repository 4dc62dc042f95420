"""Aggregation: units and cases packed into cases and pallets identified by SSCCs (AI 00).

A pack (EPCIS AggregationEvent ``ADD``) puts children — units (``01/<gtin>/21/<serial>``)
or cases (``00/<sscc>``) — into a parent SSCC; an unpack (``DELETE``) takes some or all of
them out. The store keeps three facts per write: where each child is (child → parent),
what each parent holds (parent → child → batch id, for recalls), and the event id (so a
pack repeated after a crash is a replay that changes nothing).

:func:`plan` is the pure core both stores run: given a :class:`Snapshot` of what the
store holds for the children, parents and event ids involved, it refuses the whole write
(naming the first offending child) or answers the :class:`Changes` to write in one
atomic step. The commissioning of units is checked above the store (it needs the serial
permutation and the line state: ``resolver.journeys.aggregation``); here: SSCC check
digits, a child packed elsewhere, a case packed into itself or its own content, and
parents fed from another line or site.

>>> at = 1_767_225_600_000
>>> op = AggregationOp("ev1", "ADD", "095060001343520017", (Child("01/09506000134352/21/A", "b1"),), at,
...                    ("l1", "s1"), False, "d1")
>>> snap = Snapshot(where={"01/09506000134352/21/A": None, "095060001343520017": None})
>>> changes = plan([op], snap)
>>> changes.where, changes.summaries[0].children
({'01/09506000134352/21/A': '095060001343520017'}, 1)
>>> split_key("01/09506000134352/21/A"), split_key("095060001343520017")
(('09506000134352', 'A'), '095060001343520017')
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import msgpack

from ext import compute_check_digit
from twin.errors import IdempotencyConflict, IllegalTransition, InvalidInput

_T = TypeVar("_T")
ADD, DELETE = "ADD", "DELETE"
#: How many children one pack may name; how deep cases may nest (case → pallet → …).
MAX_CHILDREN = 100_000
MAX_DEPTH = 8


class AggregationConflict(IllegalTransition):
    """A pack or unpack the twin refuses; ``field`` names the element at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__("aggregation", None, reason)
        self.field = field


class EventConflict(IdempotencyConflict):
    field = "eventID"


def check_sscc(value: object, field: str = "sscc") -> str:
    """An 18-digit SSCC with a right GS1 check digit."""
    if not isinstance(value, str) or len(value) != 18 or not value.isdigit():
        raise InvalidInput(field, f"expected an 18-digit SSCC, got {value!r:.40}")
    if compute_check_digit(value[:17]) != value[17]:
        raise InvalidInput(field, f"SSCC {value} has a wrong check digit (expected {compute_check_digit(value[:17])})")
    return value


def unit_key(gtin: str, serial: str) -> str:
    return f"01/{gtin}/21/{serial}"


def split_key(key: str) -> tuple[str, str] | str:
    """(gtin, serial) for a unit key, the SSCC for a case key."""
    if not key.startswith("01/"):
        return key
    _, gtin, _, serial = key.split("/", 3)
    return gtin, serial


@dataclass(frozen=True, slots=True)
class Child:
    """``key``: ``01/<gtin>/21/<serial>`` or an SSCC (18 digits); ``batch``: the unit's batch
    id ("" for a case), kept with the contents so a recall finds the parents of a lot;
    ``seq``: a minted unit's counter in its serial permutation (None: a case or an imported
    serial). A store may key units by (batch, seq): serials look random, their counters run
    in print order, so a line packing what it printed appends to the index instead of
    writing pages all over it. So a minted unit always comes with its counter once it has
    one (``resolver.journeys.aggregation`` gets it from the serial verifier); a unit packed
    before counters were kept (schema 1) is still found by its key."""

    key: str
    batch: str = ""
    seq: int | None = None

    @property
    def is_case(self) -> bool:
        return not self.key.startswith("01/")


@dataclass(frozen=True, slots=True)
class AggregationOp:
    """One pack (ADD) or unpack (DELETE). ``origin``: the (line, site) the children came
    from (ADD: checked against the parent's); an unpack with no children empties the parent."""

    event_id: str
    action: str
    parent: str
    children: tuple[Child, ...]
    at_ms: int
    origin: tuple[str, str] | None = None
    allow_cross_site: bool = False
    digest: str = ""
    fields: tuple[str, ...] = ()  # the request element of each child, for refusals

    def element(self, i: int) -> str:
        return self.fields[i] if i < len(self.fields) else f"children[{i}]"


class ParentMeta(NamedTuple):
    line: str
    site: str
    created_ms: int


class AggregationSummary(NamedTuple):
    event_id: str
    action: str
    parent: str
    children: int
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"eventID": self.event_id, "action": self.action, "parent": self.parent, "children": self.children,
                "replayed": self.replayed}


@dataclass
class Snapshot:
    """What the store holds for the keys a write touches (a key read and absent: None).
    ``where`` is keyed by child key or SSCC (a parent's own parent, for the nesting check)."""

    where: dict[str, str | None] = field(default_factory=dict)
    meta: dict[str, ParentMeta | None] = field(default_factory=dict)
    events: dict[str, tuple[str, bytes] | None] = field(default_factory=dict)
    contents: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Changes:
    """What a write does: ``where`` child → parent (None: unpacked), ``contents`` parent →
    child → batch (None: removed), new parent metas, event records, per-(batch, parent)
    counts (recall index), and what each op did."""

    where: dict[str, str | None] = field(default_factory=dict)
    contents: dict[str, dict[str, str | None]] = field(default_factory=dict)
    meta: dict[str, ParentMeta] = field(default_factory=dict)
    events: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    batch_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    summaries: list[AggregationSummary] = field(default_factory=list)
    event_parents: dict[str, str] = field(default_factory=dict)


def keys_to_read(ops: Sequence[AggregationOp]) -> tuple[set[str], set[str], set[str], set[str]]:
    """(where keys, parent SSCCs, event ids, parents to list) a :class:`Snapshot` must hold;
    the ancestors of each parent are read by the store as it follows ``where``."""
    where: set[str] = set()
    parents: set[str] = set()
    events: set[str] = set()
    listed: set[str] = set()
    for op in ops:
        events.add(op.event_id)
        parents.add(op.parent)
        where.add(op.parent)
        for c in op.children:
            where.add(c.key)
            if c.is_case:
                parents.add(c.key)
        if op.action == DELETE and not op.children:
            listed.add(op.parent)
    return where, parents, events, listed


def encode_event(op: AggregationOp, children: Sequence[Child], actor: tuple[str, str]) -> bytes:
    """The stored event: enough to answer a replay and to render its EPCIS event."""
    out: bytes = msgpack.packb([1, op.event_id, op.digest, op.action, op.parent, op.at_ms,
                                [[c.key, c.batch] for c in children], list(actor),
                                list(op.origin) if op.origin else None])
    return out


class StoredAggregation(NamedTuple):
    event_id: str
    digest: str
    action: str
    parent: str
    at_ms: int
    children: tuple[Child, ...]
    actor: tuple[str, str]
    origin: tuple[str, str] | None


def decode_event(blob: bytes) -> StoredAggregation:
    _, eid, digest, action, parent, at_ms, children, actor, origin = msgpack.unpackb(blob)[:9]
    return StoredAggregation(eid, digest, action, parent, at_ms, tuple(Child(k, b) for k, b in children),
                             (actor[0], actor[1]), (origin[0], origin[1]) if origin else None)


def encode_meta(meta: ParentMeta) -> bytes:
    out: bytes = msgpack.packb(list(meta))
    return out


def decode_meta(blob: bytes) -> ParentMeta:
    line, site, created = msgpack.unpackb(blob)[:3]
    return ParentMeta(line, site, created)


def op_digest(action: str, parent: str, children: Sequence[Child], allow_cross_site: bool) -> str:
    """What a retry of an event id must repeat."""
    h = hashlib.sha256(f"{action}|{parent}|{allow_cross_site}|".encode())
    for c in children:
        h.update(c.key.encode() + b"\n")
    return h.hexdigest()[:32]


def plan(ops: Sequence[AggregationOp], snap: Snapshot, actor: tuple[str, str] = ("", "")) -> Changes:
    """The changes ``ops`` make, in order, or the refusal of the first offending child.
    Pure and all-or-nothing: the store writes the result in one atomic step, or nothing."""
    out = Changes()
    where: dict[str, str | None] = dict(snap.where)
    meta: dict[str, ParentMeta | None] = dict(snap.meta)
    contents: dict[str, dict[str, str]] = {p: dict(c) for p, c in snap.contents.items()}
    seen_ids: set[str] = set()
    for op in ops:
        stored = snap.events.get(op.event_id)
        if stored is not None:
            if stored[0] != op.digest:
                raise EventConflict(f"eventID {op.event_id!r} was already used for another pack or unpack; "
                                    "use a new event id")
            ev = decode_event(stored[1])
            out.summaries.append(AggregationSummary(op.event_id, ev.action, ev.parent, len(ev.children), True))
            continue
        if op.event_id in seen_ids:
            raise InvalidInput("eventID", f"eventID {op.event_id!r} appears twice in one write")
        seen_ids.add(op.event_id)
        parent = op.parent
        if op.action == ADD:
            done = _pack(op, where, meta, out)
        elif op.action == DELETE:
            done = _unpack(op, where, contents, out)
        else:
            raise InvalidInput("action", f"expected ADD or DELETE, got {op.action!r}")
        slot = out.contents.setdefault(parent, {})
        for c in done:
            slot[c.key] = c.batch if op.action == ADD else None
            if op.action == ADD:
                contents.setdefault(parent, {})[c.key] = c.batch
            else:
                contents.get(parent, {}).pop(c.key, None)
            if c.batch:
                k = (c.batch, parent)
                out.batch_counts[k] = out.batch_counts.get(k, 0) + (1 if op.action == ADD else -1)
        out.events[op.event_id] = (op.digest, encode_event(op, done, actor))
        out.event_parents[op.event_id] = parent
        out.summaries.append(AggregationSummary(op.event_id, op.action, parent, len(done)))
    return out


def _pack(op: AggregationOp, where: dict[str, str | None], meta: dict[str, ParentMeta | None],
          out: Changes) -> list[Child]:
    parent = op.parent
    if not op.children:
        raise InvalidInput("children", "a pack names at least one child")
    ancestors = _ancestors(parent, where)
    known = meta.get(parent)
    if known is not None and op.origin is not None and not op.allow_cross_site and known[:2] != op.origin:
        raise AggregationConflict(op.element(0), f"SSCC {parent} holds goods of line {known.line} at site {known.site}, "
                                                 f"these come from line {op.origin[0]} at site {op.origin[1]}; "
                                                 "pass allow_cross_site to mix them; nothing was applied")
    seen: set[str] = set()
    for i, c in enumerate(op.children):
        if c.key in seen:
            raise InvalidInput(op.element(i), "names the same child twice")
        seen.add(c.key)
        if c.key == parent or c.key in ancestors:
            raise AggregationConflict(op.element(i), f"SSCC {c.key} cannot go into {parent}: {parent} is (inside) it; "
                                                     "nothing was applied")
        current = where.get(c.key)
        if current is not None:
            what = "already in this parent" if current == parent else f"already packed in SSCC {current}"
            raise AggregationConflict(op.element(i), f"{c.key} is {what}; unpack it first; nothing was applied")
        if c.is_case and meta.get(c.key) is None:
            raise AggregationConflict(op.element(i), f"SSCC {c.key} holds nothing: pack its contents first; "
                                                     "nothing was applied")
    for c in op.children:
        where[c.key] = parent
        out.where[c.key] = parent
    if known is None:
        origin = op.origin or ("", "")
        new = ParentMeta(origin[0], origin[1], op.at_ms)
        meta[parent] = new
        out.meta[parent] = new
    return list(op.children)


def _unpack(op: AggregationOp, where: dict[str, str | None], contents: dict[str, dict[str, str]],
            out: Changes) -> list[Child]:
    parent = op.parent
    if op.children:
        children = list(op.children)
        for i, c in enumerate(children):
            if where.get(c.key) != parent:
                raise AggregationConflict(op.element(i), f"{c.key} is not in SSCC {parent}; nothing was applied")
    else:
        held = contents.get(parent)
        if held is None:
            raise AggregationConflict("parent", f"SSCC {parent} holds nothing; nothing was applied")
        children = [Child(k, b) for k, b in sorted(held.items())]
    for c in children:
        where[c.key] = None
        out.where[c.key] = None
    return children


def _ancestors(parent: str, where: Mapping[str, str | None]) -> set[str]:
    out: set[str] = set()
    at = where.get(parent)
    while at is not None and at not in out and len(out) < MAX_DEPTH:
        out.add(at)
        at = where.get(at)
    return out



#: The audit stream aggregation writes go to (an SSCC has no GTIN).
AGG_AUDIT = "00"


class Aggregate(NamedTuple):
    """One SSCC as the store holds it: where its goods came from, what it holds now, and
    the SSCC it is packed in (a case on a pallet), if any."""

    sscc: str
    meta: ParentMeta
    children: tuple[Child, ...]
    packed_in: str | None


def check_ops(ops: Sequence[AggregationOp]) -> None:
    """The shape of a write both stores check before reading anything."""
    if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence) or not ops:
        raise InvalidInput("events", "expected at least one pack or unpack")
    for op in ops:
        if not isinstance(op, AggregationOp):
            raise InvalidInput("events", f"expected AggregationOp, got {type(op).__name__}")
        if not isinstance(op.event_id, str) or not 1 <= len(op.event_id) <= 200 or any(ch.isspace() for ch in op.event_id):
            raise InvalidInput("eventID", "expected 1-200 characters without spaces")
        check_sscc(op.parent, "parent")
        if len(op.children) > MAX_CHILDREN:
            raise InvalidInput("children", f"at most {MAX_CHILDREN} children per pack")


def chunks(items: Sequence[_T], size: int = 500) -> list[Sequence[_T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# -- finding the events of a child (queries) -------------------------------------------------
#
# ``where`` says which SSCC a child is in now; an unpack forgets that. So that the packs and
# unpacks of a child can be found after it left a parent, each store keeps a small history
# of past parents, written for unpacks only (a pack is found through ``where``): child key →
# the SSCCs it was unpacked from, and ``b:<batch id>`` → the SSCCs units of the batch were
# unpacked from. A query reads a child's current and past parents, then those parents'
# events, and keeps the events that name the child: an extra parent in the history costs a
# read, never a wrong answer.

#: History key of a batch (child keys are ``01/…`` or 18 digits, so no clash).
BATCH_HISTORY = "b:"


def history_entries(events: Sequence[StoredAggregation]) -> list[tuple[str, str]]:
    """(history key, parent SSCC) pairs the unpacks among ``events`` leave, each once."""
    out: dict[tuple[str, str], None] = {}
    for ev in events:
        if ev.action != DELETE:
            continue
        for c in ev.children:
            out[(c.key, ev.parent)] = None
            if c.batch:
                out[(BATCH_HISTORY + c.batch, ev.parent)] = None
    return list(out)


def naming(events: Sequence[StoredAggregation], keys: Sequence[str] = (),
           batches: Sequence[str] = ()) -> list[StoredAggregation]:
    """The events (each once, oldest first) with a child among ``keys`` or of one of
    ``batches``.

    >>> ev = StoredAggregation("e1", "d", ADD, "095060001343520017", 5, (Child("01/09506000134352/21/A", "b1"),),
    ...                        ("line", "l1"), None)
    >>> [e.event_id for e in naming([ev, ev], keys=["01/09506000134352/21/A"])], naming([ev], batches=["b2"])
    (['e1'], [])
    """
    wanted, of = set(keys), set(batches)
    seen: dict[str, StoredAggregation] = {}
    for ev in events:
        if ev.event_id not in seen and any(c.key in wanted or (c.batch and c.batch in of) for c in ev.children):
            seen[ev.event_id] = ev
    return sorted(seen.values(), key=lambda e: (e.at_ms, e.event_id))


def check_lookup(children: Sequence[Child], batches: Sequence[str]) -> tuple[list[Child], list[str]]:
    """The (distinct, in key order) children and batch ids of a query, checked for shape: a
    child's key is an SSCC or ``01/<gtin>/21/<serial>``; a minted unit should come with its
    batch and counter (``seq``), which a store may key it by."""
    if isinstance(children, (str, bytes)) or not isinstance(children, Sequence):
        raise InvalidInput("children", "expected a list of Child")
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise InvalidInput("batches", "expected a list of batch ids")
    for c in children:
        if not isinstance(c, Child) or not isinstance(c.key, str) or not 1 <= len(c.key) <= 300:
            raise InvalidInput("children", f"expected Child objects with a key, got {c!r:.60}")
        if not c.key.startswith("01/"):
            check_sscc(c.key, "children")
    for b in batches:
        if not isinstance(b, str) or not 1 <= len(b) <= 300:
            raise InvalidInput("batches", f"expected batch ids, got {b!r:.40}")
    return sorted({c.key: c for c in children}.values(), key=lambda c: c.key), sorted(set(batches))
