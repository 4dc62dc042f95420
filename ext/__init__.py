"""Serialink's GS1 core: the Digital Link parser/builder, element strings, check
digits and AI validation, driven by the GS1 Barcode Syntax Dictionary and
compiled with Cython. Everything else in Serialink calls into this package.

>>> from ext import parse
>>> dl = parse("https://id.gs1.org/01/09506000134352/21/ABC")
>>> dl.gtin, dl.serial, dl.element_string()
('09506000134352', 'ABC', '(01)09506000134352(21)ABC')
"""

from ext.ai import RELEASE as DICTIONARY_RELEASE
from ext.ai import describe, known_ais, validate
from ext.dl import CANONICAL_STEM, DigitalLink, build, element_string, escape, hri, parse, unescape
from ext.elements import ElementString, parse_element_string, parse_scan, validate_elements
from ext.errors import GS1Error
from ext.linters import (
    compute_check_digit,
    compute_check_pair,
    verify_check_digit,
    verify_check_pair,
)

__all__ = [
    "CANONICAL_STEM", "DICTIONARY_RELEASE", "DigitalLink", "ElementString", "GS1Error", "build",
    "compute_check_digit", "compute_check_pair", "describe", "element_string", "escape", "hri",
    "known_ais", "parse", "parse_element_string", "parse_scan", "unescape", "validate",
    "validate_elements", "verify_check_digit", "verify_check_pair",
]
