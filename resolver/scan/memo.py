"""Answers to anonymous GTIN-level scans, remembered for at most a second.

A scan of a product (``/01/{gtin}``, perhaps with a lot or query, no serial) by a visitor
without a credential asks the same question every time it is repeated, and most of its
microseconds go to parsing, negotiating and deciding the same answer again. What the
answer depends on is known: the request (raw path, query string, Accept,
Accept-Language), the rules, the GTIN's cached data (overlays, uploaded links: what
``UnitLookup`` holds per GTIN) and, through moment conditions, the clock.

So an entry is used only while the rules and the GTIN's cached data are the very objects
it was made from, and for at most :data:`TTL` seconds. A recall, a theft report or a link
upload reaches a worker through the store's change feed, which drops the GTIN's data: the
next scan misses and decides afresh (the same bound as every other cached fact). A rules
reload swaps the rules object. The clock moves a moment condition's answer at most
:data:`TTL` late. Only 307s are kept: errors, linksets and 300s are rarer and larger.

Each use still records its scan (event, metrics) and answers its own request id.

>>> memo = AnswerMemo()
>>> rules, data = object(), object()
>>> memo.put(("/01/09506000134352", "", None, None), Answer(10.0, rules, data, [], "09506000134352", None, None, None))
>>> memo.get(("/01/09506000134352", "", None, None), rules, 9.0) is not None
True
>>> memo.get(("/01/09506000134352", "", None, None), rules, 10.5) is None  # expired
True
"""

from __future__ import annotations

from typing import NamedTuple

#: How long an answer may be reused (seconds): the bound on a moment condition's lateness.
TTL = 1.0
#: Entries kept per worker; when full it starts again (a flood of distinct queries costs
#: one dict, not memory).
MAX_ENTRIES = 4096

Key = tuple[str, str, "str | None", "str | None"]


class Answer(NamedTuple):
    expires: float  # time.monotonic() after which the entry is not used
    rules: object  # the CompiledRules it was decided with
    data: object  # the GTIN's cached data it was decided with (UnitLookup.cached_gtin_data)
    headers: list[tuple[bytes, bytes]]  # the 307's headers, without x-request-id
    gtin: str
    lot: str | None
    link_type: str | None
    context: str | None


class AnswerMemo:
    """Per worker (one event loop): no locks."""

    __slots__ = ("_entries", "hits")

    def __init__(self) -> None:
        self._entries: dict[Key, Answer] = {}
        self.hits = 0

    def get(self, key: Key, rules: object, now: float) -> Answer | None:
        """The entry if it was made with these rules and has not expired; the caller still
        checks the GTIN's data (it needs the lookup to)."""
        answer = self._entries.get(key)
        if answer is None or answer.rules is not rules or now >= answer.expires:
            return None
        return answer

    def put(self, key: Key, answer: Answer) -> None:
        entries = self._entries
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[key] = answer

    def clear(self) -> None:
        self._entries.clear()
