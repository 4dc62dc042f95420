"""The moment facts of a scanned unit, from what the lookup already holds: no store read.

A unit without a record of its own has its batch's manufacture date (and the parts its
model is due from then); a unit with one has its registration, installation, last
service and firmware dates, its warranty cover (from the warranty rules) and the day its
next consumable is due (from the parts catalogue). Built once per batch record or unit
record object (both are immutable and replaced on change), not per scan.
"""

from __future__ import annotations

from datetime import date

from resolver.rules.moments import Moments
from twin.batch import Batch
from twin.catalogue_file import Reloading
from twin.parts import PartsCatalogue
from twin.unit import Unit, unit_from_batch
from twin.warranty import WarrantyRules, coverage

_LIMIT = 100_000


class UnitMoments:
    __slots__ = ("warranty", "parts", "_units", "_alike")

    def __init__(self, warranty: WarrantyRules | None = None, parts: Reloading[PartsCatalogue] | None = None) -> None:
        self.warranty = warranty
        self.parts = parts
        self._units: dict[tuple[str, str], tuple[Unit, Moments]] = {}
        # one object per distinct value: a GTIN's batches mostly share their moments (the
        # day they were made), and the decision hashes them on every scan, so 100k batches
        # made on a few days touch a few objects, not 100k scattered ones
        self._alike: dict[Moments, Moments] = {}
        if parts is not None:
            parts.listeners.append(self._units.clear)
            parts.listeners.append(self._alike.clear)

    def of_batch(self, gtin: str, batch: Batch) -> Moments:
        moments = self._build(unit_from_batch(gtin, "", batch))
        alike = self._alike
        if len(alike) >= _LIMIT:
            alike.clear()
        return alike.setdefault(moments, moments)

    def of_unit(self, unit: Unit) -> Moments:
        key = (unit.gtin, unit.serial)
        entry = self._units.get(key)
        if entry is not None and entry[0] is unit:
            return entry[1]
        moments = self._build(unit)
        if len(self._units) >= _LIMIT:
            self._units.clear()
        self._units[key] = (unit, moments)
        return moments

    def _build(self, unit: Unit) -> Moments:
        start = end = None
        if self.warranty is not None and unit.purchase_date is not None:
            cover = coverage(self.warranty, unit, unit.purchase_date)
            if cover.start is not None and cover.end is not None and cover.end >= cover.start:
                start, end = cover.start, cover.end
        catalogue = self.parts.current if self.parts is not None else None
        due: date | None = catalogue.consumable_due(unit) if catalogue is not None else None
        return Moments(unit.made_on, unit.registered_on, unit.installed_on, unit.last_service_on, unit.firmware_on,
                       unit.firmware, start, end, due)
