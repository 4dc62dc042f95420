"""GS1 Web Vocabulary link types: CURIEs, full URIs and the three equivalent namespaces.

Clients may ask for ``linkType=gs1:pip`` or any of ``https://gs1.org/voc/pip``,
``https://www.gs1.org/voc/pip``, ``https://ref.gs1.org/voc/pip``; they all mean one
thing. Internally a link type is its CURIE; linksets key relations by the full URI in
the namespace of the linkset JSON-LD context (``https://gs1.org/voc/``).

>>> normalise("https://www.gs1.org/voc/pip"), normalise("gs1:pip"), relation_uri("gs1:pip")
('gs1:pip', 'gs1:pip', 'https://gs1.org/voc/pip')
>>> is_known("gs1:registerProduct"), is_known("gs1:nosuchlt")
(True, False)
"""

from __future__ import annotations

import json
from functools import cache

from settings import default_config_dir

NAMESPACES = ("https://ref.gs1.org/voc/", "https://gs1.org/voc/", "https://www.gs1.org/voc/",
              "http://gs1.org/voc/", "http://www.gs1.org/voc/", "http://ref.gs1.org/voc/")
LINKSET_NAMESPACE = "https://gs1.org/voc/"
DEFAULT_LINK = "gs1:defaultLink"
DEFAULT_LINK_MULTI = "gs1:defaultLinkMulti"
RESOLVER_ONLY = frozenset({DEFAULT_LINK, DEFAULT_LINK_MULTI, "gs1:handledBy"})


@cache
def vocabulary() -> dict[str, dict[str, str]]:
    """CURIE → entry (uri, label, status) from the vendored GS1 Web Vocabulary list."""
    path = default_config_dir() / "gs1" / "linktypes-v1.16.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {entry["curie"]: entry for entry in data["link_types"]}


def normalise(link_type: str) -> str:
    """The canonical spelling of a link type: a ``gs1:`` CURIE for GS1 terms, else as given."""
    if link_type.startswith("gs1:"):
        return link_type
    for ns in NAMESPACES:
        if link_type.startswith(ns):
            return "gs1:" + link_type[len(ns):]
    return link_type


def relation_uri(link_type: str) -> str:
    """The linkset relation key: a full URI."""
    if link_type.startswith("gs1:"):
        return LINKSET_NAMESPACE + link_type[4:]
    return link_type


def is_known(link_type: str) -> bool:
    return normalise(link_type) in vocabulary()


def label(link_type: str) -> str:
    entry = vocabulary().get(normalise(link_type))
    return entry["label"] if entry else link_type
