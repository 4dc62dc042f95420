"""The resolver description file, ``/.well-known/gs1resolver`` (GS1-Conformant Resolver 1.2).

Declares the resolver root, the primary keys it serves, the link-type namespace it
recognises and the ``context`` values it honours.

>>> from resolver.rules.compiler import load_rules, default_rules_file
>>> doc = description(load_rules(default_rules_file()))
>>> doc["resolverRoot"], doc["supportedPrimaryKeys"]
('https://id.example.com', ['01'])
"""

from __future__ import annotations

from typing import Any

from resolver.rules.compiler import CompiledRules
from resolver.scan.linkset import CONTEXT_URL


def description(rules: CompiledRules) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": rules.name,
        "resolverRoot": rules.root,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": "https://gs1.org/voc/", "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False,
        "jsonLdContextLocation": CONTEXT_URL,
    }
    if rules.context_values:
        doc["supportedContextValuesEnumerated"] = list(rules.context_values)
    if rules.contact:
        doc["contact"] = rules.contact
    return doc
