"""EPC URNs of SGTINs and SSCCs: where the GS1 company prefix ends.

An EPC URN splits its digits at the end of the company prefix
(``urn:epc:id:sgtin:<prefix>.<indicator + item reference>.<serial>``,
``urn:epc:id:sscc:<prefix>.<extension + serial reference>``); a GTIN or an SSCC does not
say where that is. The split comes from the company prefixes this installation knows:

1. the routing rules' products named by prefix (``company_prefix:`` in rules.yaml);
2. the prefixes SSCCs were minted under (``serialink sscc mint --prefix``,
   ``POST /v1/ssccs``): the store's prefix registry (``serializer.sscc``), read for the
   identifiers at hand.

The longest known prefix the digits start with wins (GS1 company prefixes never overlap,
so at most one is right); only 6-12 digits fit an EPC URN (EPC Tag Data Standard). When
none is known, ``DEFAULT_GCP_LENGTH`` (7) digits — right for many prefixes, wrong for
others: configure the prefix to get the URN right. Reading URNs back
(``resolver.journeys.epcis_line.parse_epc``, ``resolver.journeys.aggregation.parse_sscc``)
needs none of this: the URN carries its split.

>>> known = EpcNames.of(["9506000", "95060001", "4012345"])
>>> known.sscc_urn("095060001343520017"), EpcNames().sscc_urn("095060001343520017")
('urn:epc:id:sscc:95060001.034352001', 'urn:epc:id:sscc:9506000.0134352001')
>>> known.sgtin_urn("09506000134352", "A/1"), known.sgtin_urn("04012345000009", "7")
('urn:epc:id:sgtin:95060001.03435.A%2F1', 'urn:epc:id:sgtin:4012345.000000.7')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from serializer.sscc import REGISTRY, allocator_key
from twin.aggregation import StoredAggregation, split_key

if TYPE_CHECKING:
    from twin.store import UnitStore

#: The company prefix length assumed when no configured prefix matches.
DEFAULT_GCP_LENGTH = 7
#: Prefix lengths an EPC URN can carry (EPC Tag Data Standard: 6-12 digits).
URN_PREFIX_LENGTHS = range(6, 13)
#: Characters an SGTIN URN's serial keeps as they are (TDS: the rest percent-encoded).
_SERIAL_SAFE = "'!()*+,-.:;=_"


@dataclass(frozen=True, slots=True)
class EpcNames:
    """Writes URNs with the known company prefixes (longest first); pure."""

    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, prefixes: Iterable[str]) -> EpcNames:
        usable = {p for p in prefixes if p.isascii() and p.isdigit() and len(p) in URN_PREFIX_LENGTHS}
        return cls(tuple(sorted(usable, key=lambda p: (-len(p), p))))

    def gcp_length(self, digits: str) -> int:
        """The company prefix length of ``digits`` (a GTIN after its indicator, an SSCC after
        its extension digit)."""
        for prefix in self.prefixes:
            if digits.startswith(prefix):
                return len(prefix)
        return DEFAULT_GCP_LENGTH

    def sscc_urn(self, sscc: str) -> str:
        n = self.gcp_length(sscc[1:17])
        return f"urn:epc:id:sscc:{sscc[1:1 + n]}.{sscc[0]}{sscc[1 + n:17]}"

    def sgtin_urn(self, gtin: str, serial: str) -> str:
        n = self.gcp_length(gtin[1:13])
        return f"urn:epc:id:sgtin:{gtin[1:1 + n]}.{gtin[0]}{gtin[1 + n:13]}.{quote(serial, safe=_SERIAL_SAFE)}"

    def child_urn(self, key: str) -> str:
        """The URN of an aggregation child key (``01/<gtin>/21/<serial>`` or an SSCC)."""
        parts = split_key(key)
        return self.sscc_urn(parts) if isinstance(parts, str) else self.sgtin_urn(*parts)


#: URNs with no prefix known: DEFAULT_GCP_LENGTH everywhere.
DEFAULT_NAMES = EpcNames()


async def epc_names(store: UnitStore, configured: Iterable[str], ssccs: Iterable[str] = (),
                    gtins: Iterable[str] = ()) -> EpcNames:
    """The names for these identifiers: the ``configured`` prefixes (the rules' products) and
    those of the store's SSCC prefix registries that could hold a prefix of them (one
    registry per extension digit and first four prefix digits: an SSCC reads its own, a
    GTIN those of every extension digit)."""
    keys = {allocator_key(int(s[0]), s[1:5]) for s in ssccs if len(s) == 18 and s.isdigit()}
    keys |= {allocator_key(e, g[1:5]) for g in gtins if len(g) == 14 and g.isdigit() for e in range(10)}
    found = set(configured)
    for key in sorted(keys):
        found.update(b.request_id.removeprefix("prefix-") for b in await store.list_batches(key, REGISTRY))
    return EpcNames.of(found)


async def names_for_events(store: UnitStore, configured: Iterable[str], events: Iterable[StoredAggregation]) -> EpcNames:
    """:func:`epc_names` for every SSCC and GTIN these packs and unpacks name."""
    ssccs: set[str] = set()
    gtins: set[str] = set()
    for ev in events:
        ssccs.add(ev.parent)
        for c in ev.children:
            parts = split_key(c.key)
            if isinstance(parts, str):
                ssccs.add(parts)
            else:
                gtins.add(parts[0])
    return await epc_names(store, configured, sorted(ssccs), sorted(gtins))
