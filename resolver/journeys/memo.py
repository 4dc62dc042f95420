"""Answers remembered for one compiled rules object, forgotten the moment the rules change.

Views and link choices of units without a record of their own depend only on the rules,
the product and a few facts, so the most frequent reads are answered from here; a reload
swaps the rules object, and the first read after it starts a fresh memo.

>>> memo = RulesMemo(limit=2)
>>> rules_a, rules_b = object(), object()
>>> memo.put(rules_a, "k", 1); memo.get(rules_a, "k"), memo.get(rules_b, "k")
(1, None)
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any


class RulesMemo:
    """A bounded dict tied to one rules object (cleared whole when full: entries are cheap)."""

    __slots__ = ("_rules", "_values", "_limit")

    def __init__(self, limit: int = 10_000) -> None:
        self._rules: object = None
        self._values: dict[Hashable, Any] = {}
        self._limit = limit

    def get(self, rules: object, key: Hashable) -> Any:
        if self._rules is not rules:
            return None
        return self._values.get(key)

    def put(self, rules: object, key: Hashable, value: Any) -> None:
        if self._rules is not rules:
            self._rules, self._values = rules, {}
        elif len(self._values) >= self._limit:
            self._values.clear()
        self._values[key] = value


class JourneyMemo:
    """What the journeys remember per compiled rules (see resolver.journeys.reading)."""

    __slots__ = ("link_plans", "views")

    def __init__(self) -> None:
        self.link_plans = RulesMemo()
        self.views = RulesMemo()
