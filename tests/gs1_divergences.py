"""Where Serialink deliberately differs from a public vector, and why.

Each entry is a vector id → the reason. The conformance tests assert our documented
behaviour for these cases and count them as "divergent" in the report; the README
lists them. Anything not here must match its vector exactly.
"""

DIVERGENCES: dict[str, str] = {
    # GS1's engine keeps a malformed %-escape as literal text; RFC 3986 forbids it and
    # BWIPP rejects it (bwipp-dl-040/041). The strict parser rejects it; lenient mode
    # and unescape(strict=False) keep the engine's pass-through.
    # (the escape vectors themselves test unescape(strict=False) and pass.)
    "simple-dl-058": "the simple parser only extracts data; AI (89) is unassigned, so a validating "
                     "parser rejects /89/ in the path, in lenient mode too",
    "simple-dl-059": "the simple parser only extracts data; AI (89) is unassigned, so a validating "
                     "parser rejects ?89= in the query, in lenient mode too",
    "dljs-028": "digital-link.js rejects /giai/0801234126 by a quirk; GIAI has no check digit and "
                "GS1's engine accepts /8004/0801234126 (we follow the engine)",
}
