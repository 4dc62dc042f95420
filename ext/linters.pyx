# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""GS1 Syntax Dictionary linters (component validators), in Cython.

Each linter checks one format component of an AI value and, on failure, names
the GS1 error code and the offending span, exactly like GS1's reference
linters (their unit tests are the vectors in gs1-syntax-dictionary-linters.jsonl).

>>> lint("csum", "09506000134352")
(None, 0, 0)
>>> lint("csum", "09506000134353")
('INCORRECT_CHECK_DIGIT', 13, 1)
>>> lint("yymmd0", "250231")
('ILLEGAL_DAY', 4, 2)
>>> error_message(ERROR_NAMES.index("ILLEGAL_DAY"))
'the day does not exist in that month'

The check-digit helpers that every GS1 key goes through:

>>> compute_check_digit("0950600013435")
'2'
>>> verify_check_digit("09506000134352"), verify_check_digit("09506000134353")
(True, False)
>>> compute_check_pair("1987654Ad4X4bL5ttr2310c")
'2K'
>>> verify_check_pair("1987654Ad4X4bL5ttr2310c2K")
True

Why C-level code: the Digital Link parser runs these linters on every value of
every scan, so ``run_linter`` (declared in linters.pxd) works on a raw byte
buffer without the GIL and without touching a Python object. The code lists
(ISO 3166, ISO 4217, package types, ...) live as plain data in
``ext/codelists.py`` and are compiled into lookup tables here, once, at import.

The semantics, error codes and error spans follow GS1's reference linters in
gs1/gs1-syntax-dictionary (Apache-2.0, GS1 AISBL); this is an independent
implementation checked against GS1's own unit-test vectors.
"""

import time

from cpython.unicode cimport PyUnicode_GET_LENGTH

from ext import codelists

cdef extern from "Python.h":
    # A str whose characters are all ASCII stores them as one byte each: the
    # check-digit helpers read that buffer directly, with no copy or encode.
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)


# ---------------------------------------------------------------------------
# Error codes: (code, GS1 name, message shown to people). Codes are the enum
# in linters.pxd, which mirrors GS1's gs1_lint_err_t numbering.
# ---------------------------------------------------------------------------

_ERRORS = (
    (GS1_LINTER_OK, "OK", "ok"),
    (GS1_LINTER_NON_DIGIT_CHARACTER, "NON_DIGIT_CHARACTER",
     "only digits 0-9 are allowed here"),
    (GS1_LINTER_INVALID_CSET82_CHARACTER, "INVALID_CSET82_CHARACTER",
     "this character is not allowed in GS1 data (character set 82)"),
    (GS1_LINTER_INVALID_CSET39_CHARACTER, "INVALID_CSET39_CHARACTER",
     "only A-Z, 0-9, '#', '-' and '/' are allowed here (character set 39)"),
    (GS1_LINTER_INVALID_CSET32_CHARACTER, "INVALID_CSET32_CHARACTER",
     "a check character must be one of 2-9 or A-Z without I and O"),
    (GS1_LINTER_INCORRECT_CHECK_DIGIT, "INCORRECT_CHECK_DIGIT",
     "the check digit is wrong"),
    (GS1_LINTER_TOO_SHORT_FOR_CHECK_DIGIT, "TOO_SHORT_FOR_CHECK_DIGIT",
     "the value is too short to carry a check digit"),
    (GS1_LINTER_INCORRECT_CHECK_PAIR, "INCORRECT_CHECK_PAIR",
     "the two check characters are wrong"),
    (GS1_LINTER_TOO_SHORT_FOR_CHECK_PAIR, "TOO_SHORT_FOR_CHECK_PAIR",
     "the value is too short to carry two check characters"),
    (GS1_LINTER_TOO_LONG_FOR_CHECK_PAIR_IMPLEMENTATION,
     "TOO_LONG_FOR_CHECK_PAIR_IMPLEMENTATION",
     "the value is too long for a check character pair"),
    (GS1_LINTER_GCP_DATASOURCE_OFFLINE, "GCP_DATASOURCE_OFFLINE",
     "the GS1 Company Prefix could not be looked up right now"),
    (GS1_LINTER_UNUSED_6, "UNUSED_6", "(code retired by GS1)"),
    (GS1_LINTER_INVALID_GCP_PREFIX, "INVALID_GCP_PREFIX",
     "the value does not start with a GS1 Company Prefix"),
    (GS1_LINTER_IMPORTER_IDX_MUST_BE_ONE_CHARACTER, "IMPORTER_IDX_MUST_BE_ONE_CHARACTER",
     "the importer index must be exactly one character"),
    (GS1_LINTER_INVALID_IMPORT_IDX_CHARACTER, "INVALID_IMPORT_IDX_CHARACTER",
     "the importer index must be one of A-Z, a-z, 0-9, '-' or '_'"),
    (GS1_LINTER_ILLEGAL_ZERO_VALUE, "ILLEGAL_ZERO_VALUE",
     "the value must not be zero"),
    (GS1_LINTER_NOT_ZERO, "NOT_ZERO", "the value must be zero"),
    (GS1_LINTER_ILLEGAL_ZERO_PREFIX, "ILLEGAL_ZERO_PREFIX",
     "the number must not start with 0"),
    (GS1_LINTER_NOT_ZERO_OR_ONE, "NOT_ZERO_OR_ONE", "the value must be 0 or 1"),
    (GS1_LINTER_INVALID_WINDING_DIRECTION, "INVALID_WINDING_DIRECTION",
     "the winding direction must be 0, 1 or 9"),
    (GS1_LINTER_NOT_ISO3166, "NOT_ISO3166",
     "not a three-digit ISO 3166 country code"),
    (GS1_LINTER_NOT_ISO3166_OR_999, "NOT_ISO3166_OR_999",
     "not a three-digit ISO 3166 country code or 999"),
    (GS1_LINTER_NOT_ISO3166_ALPHA2, "NOT_ISO3166_ALPHA2",
     "not a two-letter ISO 3166 country code"),
    (GS1_LINTER_NOT_ISO4217, "NOT_ISO4217",
     "not a three-digit ISO 4217 currency code"),
    (GS1_LINTER_IBAN_TOO_SHORT, "IBAN_TOO_SHORT", "the IBAN is too short"),
    (GS1_LINTER_INVALID_IBAN_CHARACTER, "INVALID_IBAN_CHARACTER",
     "an IBAN may contain only A-Z and 0-9"),
    (GS1_LINTER_ILLEGAL_IBAN_COUNTRY_CODE, "ILLEGAL_IBAN_COUNTRY_CODE",
     "the IBAN does not start with a two-letter country code"),
    (GS1_LINTER_INCORRECT_IBAN_CHECKSUM, "INCORRECT_IBAN_CHECKSUM",
     "the IBAN check digits are wrong"),
    (GS1_LINTER_DATE_TOO_SHORT, "DATE_TOO_SHORT", "the date is too short"),
    (GS1_LINTER_DATE_TOO_LONG, "DATE_TOO_LONG", "the date is too long"),
    (GS1_LINTER_UNUSED_2, "UNUSED_2", "(code retired by GS1)"),
    (GS1_LINTER_UNUSED_3, "UNUSED_3", "(code retired by GS1)"),
    (GS1_LINTER_UNUSED_5, "UNUSED_5", "(code retired by GS1)"),
    (GS1_LINTER_HOUR_WITH_MINUTE_TOO_SHORT, "HOUR_WITH_MINUTE_TOO_SHORT",
     "the time is too short for HHMM"),
    (GS1_LINTER_HOUR_WITH_MINUTE_TOO_LONG, "HOUR_WITH_MINUTE_TOO_LONG",
     "the time is too long for HHMM"),
    (GS1_LINTER_UNUSED_4, "UNUSED_4", "(code retired by GS1)"),
    (GS1_LINTER_ILLEGAL_MONTH, "ILLEGAL_MONTH", "the month must be 01 to 12"),
    (GS1_LINTER_ILLEGAL_DAY, "ILLEGAL_DAY", "the day does not exist in that month"),
    (GS1_LINTER_ILLEGAL_HOUR, "ILLEGAL_HOUR", "the hour must be 00 to 23"),
    (GS1_LINTER_ILLEGAL_MINUTE, "ILLEGAL_MINUTE", "the minute must be 00 to 59"),
    (GS1_LINTER_ILLEGAL_SECOND, "ILLEGAL_SECOND", "the second must be 00 to 59"),
    (GS1_LINTER_INVALID_LENGTH_FOR_PIECE_OF_TOTAL, "INVALID_LENGTH_FOR_PIECE_OF_TOTAL",
     "piece and total must be two numbers of the same length"),
    (GS1_LINTER_ZERO_PIECE_NUMBER, "ZERO_PIECE_NUMBER", "the piece number must not be zero"),
    (GS1_LINTER_ZERO_TOTAL_PIECES, "ZERO_TOTAL_PIECES", "the total must not be zero"),
    (GS1_LINTER_PIECE_NUMBER_EXCEEDS_TOTAL, "PIECE_NUMBER_EXCEEDS_TOTAL",
     "the piece number is larger than the total"),
    (GS1_LINTER_INVALID_PERCENT_SEQUENCE, "INVALID_PERCENT_SEQUENCE",
     "'%' must be followed by two hexadecimal digits"),
    (GS1_LINTER_COUPON_MISSING_FORMAT_CODE, "COUPON_MISSING_FORMAT_CODE",
     "the coupon format code is missing"),
    (GS1_LINTER_COUPON_INVALID_FORMAT_CODE, "COUPON_INVALID_FORMAT_CODE",
     "the coupon format code must be 0 or 1"),
    (GS1_LINTER_COUPON_MISSING_FUNDER_VLI, "COUPON_MISSING_FUNDER_VLI",
     "the coupon funder length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_FUNDER_LENGTH, "COUPON_INVALID_FUNDER_LENGTH",
     "the coupon funder length digit must be 0 to 6"),
    (GS1_LINTER_COUPON_TRUNCATED_FUNDER, "COUPON_TRUNCATED_FUNDER",
     "the coupon funder ID is shorter than its length digit says"),
    (GS1_LINTER_COUPON_TRUNCATED_OFFER_CODE, "COUPON_TRUNCATED_OFFER_CODE",
     "the coupon offer code must have six digits"),
    (GS1_LINTER_COUPON_MISSING_SERIAL_NUMBER_VLI, "COUPON_MISSING_SERIAL_NUMBER_VLI",
     "the coupon serial number length digit is missing"),
    (GS1_LINTER_COUPON_TRUNCATED_SERIAL_NUMBER, "COUPON_TRUNCATED_SERIAL_NUMBER",
     "the coupon serial number is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_GCP_VLI, "COUPON_MISSING_GCP_VLI",
     "the coupon company prefix length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_GCP_LENGTH, "COUPON_INVALID_GCP_LENGTH",
     "the coupon company prefix length digit must be 0 to 6"),
    (GS1_LINTER_COUPON_TRUNCATED_GCP, "COUPON_TRUNCATED_GCP",
     "the coupon company prefix is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_SAVE_VALUE_VLI, "COUPON_MISSING_SAVE_VALUE_VLI",
     "the coupon save value length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_SAVE_VALUE_LENGTH, "COUPON_INVALID_SAVE_VALUE_LENGTH",
     "the coupon save value length digit must be 1 to 5"),
    (GS1_LINTER_COUPON_TRUNCATED_SAVE_VALUE, "COUPON_TRUNCATED_SAVE_VALUE",
     "the coupon save value is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_1ST_PURCHASE_REQUIREMENT_VLI,
     "COUPON_MISSING_1ST_PURCHASE_REQUIREMENT_VLI",
     "the coupon purchase requirement length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_1ST_PURCHASE_REQUIREMENT_LENGTH,
     "COUPON_INVALID_1ST_PURCHASE_REQUIREMENT_LENGTH",
     "the coupon purchase requirement length digit must be 1 to 5"),
    (GS1_LINTER_COUPON_TRUNCATED_1ST_PURCHASE_REQUIREMENT,
     "COUPON_TRUNCATED_1ST_PURCHASE_REQUIREMENT",
     "the coupon purchase requirement is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_1ST_PURCHASE_REQUIREMENT_CODE,
     "COUPON_MISSING_1ST_PURCHASE_REQUIREMENT_CODE",
     "the coupon purchase requirement code is missing"),
    (GS1_LINTER_COUPON_INVALID_1ST_PURCHASE_REQUIREMENT_CODE,
     "COUPON_INVALID_1ST_PURCHASE_REQUIREMENT_CODE",
     "the coupon purchase requirement code must be 0 to 4 or 9"),
    (GS1_LINTER_COUPON_TRUNCATED_1ST_PURCHASE_FAMILY_CODE,
     "COUPON_TRUNCATED_1ST_PURCHASE_FAMILY_CODE",
     "the coupon family code must have three digits"),
    (GS1_LINTER_COUPON_MISSING_ADDITIONAL_PURCHASE_RULES_CODE,
     "COUPON_MISSING_ADDITIONAL_PURCHASE_RULES_CODE",
     "the coupon additional purchase rules code is missing"),
    (GS1_LINTER_COUPON_INVALID_ADDITIONAL_PURCHASE_RULES_CODE,
     "COUPON_INVALID_ADDITIONAL_PURCHASE_RULES_CODE",
     "the coupon additional purchase rules code must be 0 to 3"),
    (GS1_LINTER_COUPON_MISSING_2ND_PURCHASE_REQUIREMENT_VLI,
     "COUPON_MISSING_2ND_PURCHASE_REQUIREMENT_VLI",
     "the coupon second purchase requirement length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_2ND_PURCHASE_REQUIREMENT_LENGTH,
     "COUPON_INVALID_2ND_PURCHASE_REQUIREMENT_LENGTH",
     "the coupon second purchase requirement length digit must be 1 to 5"),
    (GS1_LINTER_COUPON_TRUNCATED_2ND_PURCHASE_REQUIREMENT,
     "COUPON_TRUNCATED_2ND_PURCHASE_REQUIREMENT",
     "the coupon second purchase requirement is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_2ND_PURCHASE_REQUIREMENT_CODE,
     "COUPON_MISSING_2ND_PURCHASE_REQUIREMENT_CODE",
     "the coupon second purchase requirement code is missing"),
    (GS1_LINTER_COUPON_INVALID_2ND_PURCHASE_REQUIREMENT_CODE,
     "COUPON_INVALID_2ND_PURCHASE_REQUIREMENT_CODE",
     "the coupon second purchase requirement code must be 0 to 4 or 9"),
    (GS1_LINTER_COUPON_TRUNCATED_2ND_PURCHASE_FAMILY_CODE,
     "COUPON_TRUNCATED_2ND_PURCHASE_FAMILY_CODE",
     "the coupon second family code must have three digits"),
    (GS1_LINTER_COUPON_MISSING_2ND_PURCHASE_GCP_VLI, "COUPON_MISSING_2ND_PURCHASE_GCP_VLI",
     "the coupon second company prefix length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_2ND_PURCHASE_GCP_LENGTH,
     "COUPON_INVALID_2ND_PURCHASE_GCP_LENGTH",
     "the coupon second company prefix length digit must be 0 to 6 or 9"),
    (GS1_LINTER_COUPON_TRUNCATED_2ND_PURCHASE_GCP, "COUPON_TRUNCATED_2ND_PURCHASE_GCP",
     "the coupon second company prefix is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_3RD_PURCHASE_REQUIREMENT_VLI,
     "COUPON_MISSING_3RD_PURCHASE_REQUIREMENT_VLI",
     "the coupon third purchase requirement length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_3RD_PURCHASE_REQUIREMENT_LENGTH,
     "COUPON_INVALID_3RD_PURCHASE_REQUIREMENT_LENGTH",
     "the coupon third purchase requirement length digit must be 1 to 5"),
    (GS1_LINTER_COUPON_TRUNCATED_3RD_PURCHASE_REQUIREMENT,
     "COUPON_TRUNCATED_3RD_PURCHASE_REQUIREMENT",
     "the coupon third purchase requirement is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_3RD_PURCHASE_REQUIREMENT_CODE,
     "COUPON_MISSING_3RD_PURCHASE_REQUIREMENT_CODE",
     "the coupon third purchase requirement code is missing"),
    (GS1_LINTER_COUPON_INVALID_3RD_PURCHASE_REQUIREMENT_CODE,
     "COUPON_INVALID_3RD_PURCHASE_REQUIREMENT_CODE",
     "the coupon third purchase requirement code must be 0 to 4 or 9"),
    (GS1_LINTER_COUPON_TRUNCATED_3RD_PURCHASE_FAMILY_CODE,
     "COUPON_TRUNCATED_3RD_PURCHASE_FAMILY_CODE",
     "the coupon third family code must have three digits"),
    (GS1_LINTER_COUPON_MISSING_3RD_PURCHASE_GCP_VLI, "COUPON_MISSING_3RD_PURCHASE_GCP_VLI",
     "the coupon third company prefix length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_3RD_PURCHASE_GCP_LENGTH,
     "COUPON_INVALID_3RD_PURCHASE_GCP_LENGTH",
     "the coupon third company prefix length digit must be 0 to 6 or 9"),
    (GS1_LINTER_COUPON_TRUNCATED_3RD_PURCHASE_GCP, "COUPON_TRUNCATED_3RD_PURCHASE_GCP",
     "the coupon third company prefix is shorter than its length digit says"),
    (GS1_LINTER_COUPON_TOO_SHORT_FOR_EXPIRATION_DATE,
     "COUPON_TOO_SHORT_FOR_EXPIRATION_DATE",
     "the coupon expiration date must have six digits (YYMMDD)"),
    (GS1_LINTER_COUPON_INVALID_EXIPIRATION_DATE, "COUPON_INVALID_EXIPIRATION_DATE",
     "the coupon expiration date is not a real date"),
    (GS1_LINTER_COUPON_TOO_SHORT_FOR_START_DATE, "COUPON_TOO_SHORT_FOR_START_DATE",
     "the coupon start date must have six digits (YYMMDD)"),
    (GS1_LINTER_COUPON_INVALID_START_DATE, "COUPON_INVALID_START_DATE",
     "the coupon start date is not a real date"),
    (GS1_LINTER_COUPON_EXPIRATION_BEFORE_START, "COUPON_EXPIRATION_BEFORE_START",
     "the coupon expires before it starts"),
    (GS1_LINTER_COUPON_MISSING_RETAILER_GCP_OR_GLN_VLI,
     "COUPON_MISSING_RETAILER_GCP_OR_GLN_VLI",
     "the coupon retailer ID length digit is missing"),
    (GS1_LINTER_COUPON_INVALID_RETAILER_GCP_OR_GLN_LENGTH,
     "COUPON_INVALID_RETAILER_GCP_OR_GLN_LENGTH",
     "the coupon retailer ID length digit must be 1 to 7"),
    (GS1_LINTER_COUPON_TRUNCATED_RETAILER_GCP_OR_GLN,
     "COUPON_TRUNCATED_RETAILER_GCP_OR_GLN",
     "the coupon retailer ID is shorter than its length digit says"),
    (GS1_LINTER_COUPON_MISSING_SAVE_VALUE_CODE, "COUPON_MISSING_SAVE_VALUE_CODE",
     "the coupon save value code is missing"),
    (GS1_LINTER_COUPON_INVALID_SAVE_VALUE_CODE, "COUPON_INVALID_SAVE_VALUE_CODE",
     "the coupon save value code must be 0, 1, 2, 5 or 6"),
    (GS1_LINTER_COUPON_MISSING_SAVE_VALUE_APPLIES_TO_ITEM,
     "COUPON_MISSING_SAVE_VALUE_APPLIES_TO_ITEM",
     "the coupon 'save value applies to item' digit is missing"),
    (GS1_LINTER_COUPON_INVALID_SAVE_VALUE_APPLIES_TO_ITEM,
     "COUPON_INVALID_SAVE_VALUE_APPLIES_TO_ITEM",
     "the coupon 'save value applies to item' digit must be 0 to 2"),
    (GS1_LINTER_COUPON_MISSING_STORE_COUPON_FLAG, "COUPON_MISSING_STORE_COUPON_FLAG",
     "the coupon store coupon flag is missing"),
    (GS1_LINTER_COUPON_MISSING_DONT_MULTIPLY_FLAG, "COUPON_MISSING_DONT_MULTIPLY_FLAG",
     "the coupon 'don't multiply' flag is missing"),
    (GS1_LINTER_COUPON_INVALID_DONT_MULTIPLY_FLAG, "COUPON_INVALID_DONT_MULTIPLY_FLAG",
     "the coupon 'don't multiply' flag must be 0 or 1"),
    (GS1_LINTER_COUPON_EXCESS_DATA, "COUPON_EXCESS_DATA",
     "the coupon has unexpected data at the end"),
    (GS1_LINTER_UNUSED_1, "UNUSED_1", "(code retired by GS1)"),
    (GS1_LINTER_INVALID_LATITUDE, "INVALID_LATITUDE",
     "the latitude must be 0000000000 to 1800000000"),
    (GS1_LINTER_INVALID_LONGITUDE, "INVALID_LONGITUDE",
     "the longitude must be 0000000000 to 3600000000"),
    (GS1_LINTER_INVALID_MEDIA_TYPE, "INVALID_MEDIA_TYPE", "not a known AIDC media type"),
    (GS1_LINTER_LATITUDE_INVALID_LENGTH, "LATITUDE_INVALID_LENGTH",
     "the latitude must have ten digits"),
    (GS1_LINTER_LONGITUDE_INVALID_LENGTH, "LONGITUDE_INVALID_LENGTH",
     "the longitude must have ten digits"),
    (GS1_LINTER_INVALID_CSET64_CHARACTER, "INVALID_CSET64_CHARACTER",
     "only A-Z, a-z, 0-9, '-' and '_' are allowed here (character set 64)"),
    (GS1_LINTER_INVALID_CSET64_PADDING, "INVALID_CSET64_PADDING",
     "wrong '=' padding at the end (character set 64)"),
    (GS1_LINTER_NOT_HYPHEN, "NOT_HYPHEN", "only '-' is allowed here"),
    (GS1_LINTER_INVALID_BIOLOGICAL_SEX_CODE, "INVALID_BIOLOGICAL_SEX_CODE",
     "the sex code must be 0, 1, 2 or 9 (ISO/IEC 5218)"),
    (GS1_LINTER_POSITION_IN_SEQUENCE_MALFORMED, "POSITION_IN_SEQUENCE_MALFORMED",
     "the value must look like position/total, e.g. 2/5"),
    (GS1_LINTER_POSITION_EXCEEDS_END, "POSITION_EXCEEDS_END",
     "the position is larger than the total"),
    (GS1_LINTER_REQUIRES_NON_DIGIT_CHARACTER, "REQUIRES_NON_DIGIT_CHARACTER",
     "the value must contain at least one character that is not a digit"),
    (GS1_LINTER_HOUR_TOO_SHORT, "HOUR_TOO_SHORT", "the hour must have two digits"),
    (GS1_LINTER_HOUR_TOO_LONG, "HOUR_TOO_LONG", "the hour must have two digits"),
    (GS1_LINTER_MINUTE_TOO_SHORT, "MINUTE_TOO_SHORT", "the minute must have two digits"),
    (GS1_LINTER_MINUTE_TOO_LONG, "MINUTE_TOO_LONG", "the minute must have two digits"),
    (GS1_LINTER_SECOND_TOO_SHORT, "SECOND_TOO_SHORT", "the second must have two digits"),
    (GS1_LINTER_SECOND_TOO_LONG, "SECOND_TOO_LONG", "the second must have two digits"),
    (GS1_LINTER_INVALID_PACKAGE_TYPE, "INVALID_PACKAGE_TYPE", "not a known package type code"),
    (GS1_LINTER_TOO_SHORT_FOR_GCP, "TOO_SHORT_FOR_GCP",
     "the value is too short to hold a GS1 Company Prefix"),
    (GS1_LINTER_IBAN_TOO_LONG, "IBAN_TOO_LONG", "the IBAN is too long"),
    (GS1_LINTER_UNKNOWN_LINTER, "UNKNOWN_LINTER",
     "internal error: no such linter (Serialink code, not GS1's)"),
)

if [code for code, _, _ in _ERRORS] != list(range(len(_ERRORS))):
    raise ImportError("ext.linters: error table out of step with linters.pxd")

ERROR_NAMES = tuple(name for _, name, _ in _ERRORS)
ERROR_MESSAGES = tuple(message for _, _, message in _ERRORS)


# ---------------------------------------------------------------------------
# Linter ids: index into LINTERS, the enum in linters.pxd.
# ---------------------------------------------------------------------------

_LINTER_NAMES = (
    (0, ""),
    (LINTER_CSETNUMERIC, "csetnumeric"),
    (LINTER_CSET82, "cset82"),
    (LINTER_CSET39, "cset39"),
    (LINTER_CSET64, "cset64"),
    (LINTER_CSUM, "csum"),
    (LINTER_CSUMALPHA, "csumalpha"),
    (LINTER_GCPPOS1, "gcppos1"),
    (LINTER_GCPPOS2, "gcppos2"),
    (LINTER_YYMMDD, "yymmdd"),
    (LINTER_YYMMD0, "yymmd0"),
    (LINTER_YYYYMMDD, "yyyymmdd"),
    (LINTER_YYYYMMD0, "yyyymmd0"),
    (LINTER_HH, "hh"),
    (LINTER_HHMI, "hhmi"),
    (LINTER_MI, "mi"),
    (LINTER_SS, "ss"),
    (LINTER_ISO3166, "iso3166"),
    (LINTER_ISO3166999, "iso3166999"),
    (LINTER_ISO3166ALPHA2, "iso3166alpha2"),
    (LINTER_ISO4217, "iso4217"),
    (LINTER_ISO5218, "iso5218"),
    (LINTER_IBAN, "iban"),
    (LINTER_PCENC, "pcenc"),
    (LINTER_PIECEOFTOTAL, "pieceoftotal"),
    (LINTER_POSINSEQSLASH, "posinseqslash"),
    (LINTER_NONZERO, "nonzero"),
    (LINTER_ZERO, "zero"),
    (LINTER_NOZEROPREFIX, "nozeroprefix"),
    (LINTER_WINDING, "winding"),
    (LINTER_YESNO, "yesno"),
    (LINTER_HYPHEN, "hyphen"),
    (LINTER_LATITUDE, "latitude"),
    (LINTER_LONGITUDE, "longitude"),
    (LINTER_MEDIATYPE, "mediatype"),
    (LINTER_PACKAGETYPE, "packagetype"),
    (LINTER_IMPORTERIDX, "importeridx"),
    (LINTER_COUPONCODE, "couponcode"),
    (LINTER_COUPONPOSOFFER, "couponposoffer"),
    (LINTER_HASNONDIGIT, "hasnondigit"),
)

if [i for i, _ in _LINTER_NAMES] != list(range(LINTER_COUNT)):
    raise ImportError("ext.linters: linter table out of step with linters.pxd")

LINTERS = tuple(name for _, name in _LINTER_NAMES)
_IDS = {name: i for i, name in enumerate(LINTERS) if name}


# ---------------------------------------------------------------------------
# Lookup tables, filled once at import from the character sets and
# ext/codelists.py. All are indexed by a byte or a small number, so a lookup
# is one load.
# ---------------------------------------------------------------------------

# GS1 character set 82, in the order that gives each character its value in
# the check-character-pair calculation (GS1 General Specifications).
_CSET82_CHARS = b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_CSET39_CHARS = b"#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CSET64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CSET32_CHARS = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

cdef unsigned char CSET82[256]
cdef unsigned char CSET39[256]
cdef unsigned char CSET64[256]
cdef unsigned char IMPORTER_INDEX[256]
cdef unsigned char HEX_DIGIT[256]
cdef signed char CSET82_VALUE[256]    # -1: not in CSET 82
cdef unsigned char IBAN_WEIGHT[256]   # 0: invalid; else the character's value + 1
cdef unsigned char CSET32_BY_VALUE[32]  # check characters by value

cdef unsigned char ISO3166_NUM[1000]
cdef unsigned char ISO4217_NUM[1000]
cdef unsigned char ISO3166_A2[676]
cdef unsigned char MEDIA_TYPE[100]

# Package type codes are one to three characters: each is packed into one
# integer key (bytes and length) and the sorted keys are binary-searched.
cdef enum:
    MAX_PACKAGE_TYPES = 1024
cdef unsigned int PACKAGE_TYPE_KEYS[MAX_PACKAGE_TYPES]
cdef Py_ssize_t N_PACKAGE_TYPES = 0

# Weights of the check-character pair: the first primes, rightmost data
# character first. 97 of them covers the longest value any AI allows (99
# characters including the pair); GS1's reference stops there too.
cdef unsigned int PRIMES[97]
cdef Py_ssize_t N_PRIMES = 97


cdef void _fill(unsigned char* table, bytes chars) noexcept:
    cdef Py_ssize_t i
    for i in range(256):
        table[i] = 0
    for i in range(len(chars)):
        table[<unsigned char>chars[i]] = 1


cdef unsigned int _package_key(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef unsigned int key = <unsigned int>n
    cdef Py_ssize_t i
    for i in range(3):
        key = (key << 8) | (s[i] if i < n else 0)
    return key


cdef void _build_tables() except *:
    cdef Py_ssize_t i
    cdef int v, q, is_prime
    cdef bytes b

    _fill(CSET82, _CSET82_CHARS)
    _fill(CSET39, _CSET39_CHARS)
    _fill(CSET64, _CSET64_CHARS)
    _fill(IMPORTER_INDEX, codelists.IMPORTER_INDEX_CHARACTERS.encode("ascii"))
    _fill(HEX_DIGIT, b"0123456789ABCDEFabcdef")
    for i in range(256):
        CSET82_VALUE[i] = -1
        IBAN_WEIGHT[i] = 0
    for i in range(len(_CSET82_CHARS)):
        CSET82_VALUE[<unsigned char>_CSET82_CHARS[i]] = <signed char>i
    for i in range(32):
        CSET32_BY_VALUE[i] = <unsigned char>_CSET32_CHARS[i]
    for i in range(10):
        IBAN_WEIGHT[48 + i] = <unsigned char>(i + 1)
    for i in range(26):
        IBAN_WEIGHT[65 + i] = <unsigned char>(i + 11)

    for i in range(1000):
        ISO3166_NUM[i] = 0
        ISO4217_NUM[i] = 0
    for i in range(676):
        ISO3166_A2[i] = 0
    for i in range(100):
        MEDIA_TYPE[i] = 0
    for code in codelists.ISO3166_NUMERIC:
        ISO3166_NUM[int(code)] = 1
    for code in codelists.ISO4217_NUMERIC:
        ISO4217_NUM[int(code)] = 1
    for code in codelists.ISO3166_ALPHA2:
        ISO3166_A2[(ord(code[0]) - 65) * 26 + ord(code[1]) - 65] = 1
    for code in codelists.MEDIA_TYPES:
        MEDIA_TYPE[int(code)] = 1

    global N_PACKAGE_TYPES
    keys = []
    for code in codelists.PACKAGE_TYPES:
        b = code.encode("ascii")
        if not 1 <= len(b) <= 3:
            raise ImportError(f"ext.linters: package type {code!r} is not 1-3 characters")
        keys.append(_package_key(b, len(b)))
    keys.sort()
    if len(keys) > MAX_PACKAGE_TYPES:
        raise ImportError("ext.linters: too many package types for the lookup table")
    for i, key in enumerate(keys):
        PACKAGE_TYPE_KEYS[i] = key
    N_PACKAGE_TYPES = len(keys)

    i = 0
    v = 2
    while i < N_PRIMES:
        is_prime = 1
        q = 2
        while q * q <= v:
            if v % q == 0:
                is_prime = 0
                break
            q += 1
        if is_prime:
            PRIMES[i] = v
            i += 1
        v += 1


_build_tables()


# ---------------------------------------------------------------------------
# The century of a two-digit year (GS1 General Specifications, "Determination
# of century in dates"): the window slides with the current year, 49 years
# back and 50 ahead. GS1's reference linters pin the current year to 2021;
# both choices agree on every leap-year question until 2049.
# ---------------------------------------------------------------------------

cdef int _REFERENCE_YEAR = time.gmtime().tm_year


def set_reference_year(year: int | None = None) -> int:
    """Set the "current year" of the YYMMDD century window; None means this
    year. Returns the year now in force. For tests and for replaying old data;
    the default is right for live scans."""
    global _REFERENCE_YEAR
    _REFERENCE_YEAR = time.gmtime().tm_year if year is None else int(year)
    return _REFERENCE_YEAR


cdef inline int _full_year(int yy) noexcept nogil:
    cdef int century = _REFERENCE_YEAR - _REFERENCE_YEAR % 100
    cdef int d = yy - _REFERENCE_YEAR % 100
    if d >= 51:
        return century - 100 + yy
    if d > -50:
        return century + yy
    return century + 100 + yy


# ---------------------------------------------------------------------------
# The linters. Each returns GS1_LINTER_OK or an error code, with the offending
# span in pos/ln. They never read outside s[0:n].
# ---------------------------------------------------------------------------

ctypedef int (*linter_fn)(const unsigned char* s, Py_ssize_t n,
                          Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil


cdef inline int _fail(int code, Py_ssize_t p, Py_ssize_t l,
                      Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    pos[0] = p
    ln[0] = l
    return code


cdef inline int _truncated(int code, Py_ssize_t p, Py_ssize_t n,
                           Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # A field that runs past the end: GS1 marks what is left of it, or the
    # whole value when nothing is left.
    if p == n:
        return _fail(code, 0, n, pos, ln)
    return _fail(code, p, n - p, pos, ln)


cdef inline bint _is_digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline int _two_digits(const unsigned char* s) noexcept nogil:
    return (s[0] - 48) * 10 + (s[1] - 48)


cdef int _first_non_digit(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not _is_digit(s[i]):
            return <int>i
    return -1


cdef int _csetnumeric(const unsigned char* s, Py_ssize_t n,
                      Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int bad = _first_non_digit(s, n)
    if bad >= 0:
        return _fail(GS1_LINTER_NON_DIGIT_CHARACTER, bad, 1, pos, ln)
    return GS1_LINTER_OK


cdef inline int _in_table(const unsigned char* table, int err, const unsigned char* s,
                          Py_ssize_t n, Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not table[s[i]]:
            return _fail(err, i, 1, pos, ln)
    return GS1_LINTER_OK


cdef int _cset82(const unsigned char* s, Py_ssize_t n,
                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _in_table(CSET82, GS1_LINTER_INVALID_CSET82_CHARACTER, s, n, pos, ln)


cdef int _cset39(const unsigned char* s, Py_ssize_t n,
                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _in_table(CSET39, GS1_LINTER_INVALID_CSET39_CHARACTER, s, n, pos, ln)


cdef int _cset64(const unsigned char* s, Py_ssize_t n,
                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # base64url: '=' only as trailing padding, at most two, and only when the
    # padded length is a multiple of 3. Padding is judged first, as GS1 does.
    cdef Py_ssize_t end = n
    while end > 0 and s[end - 1] == 61:
        end -= 1
    if n - end > 2 or (end < n and n % 3 != 0):
        return _fail(GS1_LINTER_INVALID_CSET64_PADDING, end, n - end, pos, ln)
    return _in_table(CSET64, GS1_LINTER_INVALID_CSET64_CHARACTER, s, end, pos, ln)


cdef inline int _mod10(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    # GS1 mod-10 check digit of the data digits s[0:n]: weights 3,1,3,...
    # from the rightmost digit. -1 if a character is not a digit.
    cdef unsigned int threes = 0, ones = 0, d
    cdef Py_ssize_t i = n - 1
    while i >= 1:
        d = <unsigned int>s[i] - 48
        if d > 9:
            return -1
        threes += d
        d = <unsigned int>s[i - 1] - 48
        if d > 9:
            return -1
        ones += d
        i -= 2
    if i == 0:
        d = <unsigned int>s[0] - 48
        if d > 9:
            return -1
        threes += d
    return <int>((10 - (3 * threes + ones) % 10) % 10)


cdef int _csum(const unsigned char* s, Py_ssize_t n,
               Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int check
    if n == 0:
        return _fail(GS1_LINTER_TOO_SHORT_FOR_CHECK_DIGIT, 0, 0, pos, ln)
    check = _mod10(s, n - 1)
    if check < 0 or not _is_digit(s[n - 1]):
        return _csetnumeric(s, n, pos, ln)
    if s[n - 1] != 48 + check:
        return _fail(GS1_LINTER_INCORRECT_CHECK_DIGIT, n - 1, 1, pos, ln)
    return GS1_LINTER_OK


cdef int _check_pair(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    # The 10-bit check value of data s[0:n] (all CSET 82, n <= N_PRIMES).
    cdef unsigned int total = 0
    cdef Py_ssize_t i
    for i in range(n):
        total += <unsigned int>CSET82_VALUE[s[i]] * PRIMES[n - 1 - i]
    return <int>(total % 1021)


cdef int _csumalpha(const unsigned char* s, Py_ssize_t n,
                    Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    cdef int value
    if n < 2:
        return _fail(GS1_LINTER_TOO_SHORT_FOR_CHECK_PAIR, 0, n, pos, ln)
    if n - 2 > N_PRIMES:
        return _fail(GS1_LINTER_TOO_LONG_FOR_CHECK_PAIR_IMPLEMENTATION, 0, n, pos, ln)
    for i in range(n - 2):
        if CSET82_VALUE[s[i]] < 0:
            return _fail(GS1_LINTER_INVALID_CSET82_CHARACTER, i, 1, pos, ln)
    # A check character outside CSET 32 is simply a wrong one: GS1's current
    # reference reports INCORRECT_CHECK_PAIR for it (INVALID_CSET32_CHARACTER
    # stays in the code table only for older GS1 releases).
    value = _check_pair(s, n - 2)
    if s[n - 2] != CSET32_BY_VALUE[value >> 5] or s[n - 1] != CSET32_BY_VALUE[value & 31]:
        return _fail(GS1_LINTER_INCORRECT_CHECK_PAIR, n - 2, 2, pos, ln)
    return GS1_LINTER_OK


cdef int _gcppos1(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # The shortest GS1 Company Prefix has four digits. (An allocated-prefix
    # lookup would plug in here; GS1's reference leaves it to the user too.)
    cdef Py_ssize_t i
    if n < 4:
        return _fail(GS1_LINTER_TOO_SHORT_FOR_GCP, 0, n, pos, ln)
    for i in range(4):
        if not _is_digit(s[i]):
            return _fail(GS1_LINTER_INVALID_GCP_PREFIX, i, 1, pos, ln)
    return GS1_LINTER_OK


cdef int _gcppos2(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # The GCP starts after an extension or indicator digit (SSCC, GTIN, ...).
    cdef int err
    if n < 2:
        return _fail(GS1_LINTER_TOO_SHORT_FOR_GCP, 0, n, pos, ln)
    err = _gcppos1(s + 1, n - 1, pos, ln)
    if err:
        pos[0] += 1
    return err


cdef int _month_day(int year, int mm, int dd, bint day_zero_ok, Py_ssize_t at,
                    Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # `at` is where MM starts in the value; DD follows it.
    cdef int maxdd
    if mm < 1 or mm > 12:
        return _fail(GS1_LINTER_ILLEGAL_MONTH, at, 2, pos, ln)
    if mm == 2:
        maxdd = 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    elif mm == 4 or mm == 6 or mm == 9 or mm == 11:
        maxdd = 30
    else:
        maxdd = 31
    if dd > maxdd or (dd == 0 and not day_zero_ok):
        return _fail(GS1_LINTER_ILLEGAL_DAY, at + 2, 2, pos, ln)
    return GS1_LINTER_OK


cdef int _date(const unsigned char* s, Py_ssize_t n, Py_ssize_t year_len, bint day_zero_ok,
               Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int bad, year
    if n != year_len + 4:
        return _fail(GS1_LINTER_DATE_TOO_SHORT if n < year_len + 4 else GS1_LINTER_DATE_TOO_LONG,
                     0, n, pos, ln)
    bad = _first_non_digit(s, n)
    if bad >= 0:
        return _fail(GS1_LINTER_NON_DIGIT_CHARACTER, bad, 1, pos, ln)
    if year_len == 2:
        year = _full_year(_two_digits(s))
    else:
        year = _two_digits(s) * 100 + _two_digits(s + 2)
    return _month_day(year, _two_digits(s + year_len), _two_digits(s + year_len + 2),
                      day_zero_ok, year_len, pos, ln)


cdef int _yymmdd(const unsigned char* s, Py_ssize_t n,
                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _date(s, n, 2, False, pos, ln)


cdef int _yymmd0(const unsigned char* s, Py_ssize_t n,
                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _date(s, n, 2, True, pos, ln)


cdef int _yyyymmdd(const unsigned char* s, Py_ssize_t n,
                   Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _date(s, n, 4, False, pos, ln)


cdef int _yyyymmd0(const unsigned char* s, Py_ssize_t n,
                   Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _date(s, n, 4, True, pos, ln)


cdef inline int _two_digit_field(const unsigned char* s, Py_ssize_t n, int maximum,
                                 int too_short, int too_long, int illegal,
                                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int bad
    if n != 2:
        return _fail(too_short if n < 2 else too_long, 0, n, pos, ln)
    bad = _first_non_digit(s, 2)
    if bad >= 0:
        return _fail(GS1_LINTER_NON_DIGIT_CHARACTER, bad, 1, pos, ln)
    if _two_digits(s) > maximum:
        return _fail(illegal, 0, 2, pos, ln)
    return GS1_LINTER_OK


cdef int _hh(const unsigned char* s, Py_ssize_t n,
             Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _two_digit_field(s, n, 23, GS1_LINTER_HOUR_TOO_SHORT, GS1_LINTER_HOUR_TOO_LONG,
                            GS1_LINTER_ILLEGAL_HOUR, pos, ln)


cdef int _mi(const unsigned char* s, Py_ssize_t n,
             Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _two_digit_field(s, n, 59, GS1_LINTER_MINUTE_TOO_SHORT, GS1_LINTER_MINUTE_TOO_LONG,
                            GS1_LINTER_ILLEGAL_MINUTE, pos, ln)


cdef int _ss(const unsigned char* s, Py_ssize_t n,
             Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _two_digit_field(s, n, 59, GS1_LINTER_SECOND_TOO_SHORT, GS1_LINTER_SECOND_TOO_LONG,
                            GS1_LINTER_ILLEGAL_SECOND, pos, ln)


cdef int _hhmi(const unsigned char* s, Py_ssize_t n,
               Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int err
    if n != 4:
        return _fail(GS1_LINTER_HOUR_WITH_MINUTE_TOO_SHORT if n < 4
                     else GS1_LINTER_HOUR_WITH_MINUTE_TOO_LONG, 0, n, pos, ln)
    err = _hh(s, 2, pos, ln)
    if err:
        return err
    err = _mi(s + 2, 2, pos, ln)
    if err:
        pos[0] += 2
    return err


cdef inline int _three_digit_code(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    # 0-999 for three digits, else -1.
    if n != 3 or not (_is_digit(s[0]) and _is_digit(s[1]) and _is_digit(s[2])):
        return -1
    return (s[0] - 48) * 100 + (s[1] - 48) * 10 + (s[2] - 48)


cdef int _iso3166(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int code = _three_digit_code(s, n)
    if code < 0 or not ISO3166_NUM[code]:
        return _fail(GS1_LINTER_NOT_ISO3166, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _iso3166999(const unsigned char* s, Py_ssize_t n,
                     Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int code = _three_digit_code(s, n)
    if code < 0 or not (code == 999 or ISO3166_NUM[code]):
        return _fail(GS1_LINTER_NOT_ISO3166_OR_999, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef inline bint _is_alpha2(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    if n != 2 or not (65 <= s[0] <= 90 and 65 <= s[1] <= 90):
        return False
    return ISO3166_A2[(s[0] - 65) * 26 + (s[1] - 65)] != 0


cdef int _iso3166alpha2(const unsigned char* s, Py_ssize_t n,
                        Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if not _is_alpha2(s, n):
        return _fail(GS1_LINTER_NOT_ISO3166_ALPHA2, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _iso4217(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef int code = _three_digit_code(s, n)
    if code < 0 or not ISO4217_NUM[code]:
        return _fail(GS1_LINTER_NOT_ISO4217, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _iso5218(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if n != 1 or not (s[0] == 48 or s[0] == 49 or s[0] == 50 or s[0] == 57):
        return _fail(GS1_LINTER_INVALID_BIOLOGICAL_SEX_CODE, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _iban(const unsigned char* s, Py_ssize_t n,
               Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # ISO 13616: country code, two check digits, then the account; valid when
    # the number read from position 4 onwards, then the first four, is 1 mod 97
    # (letters count as 10..35). Error order as GS1's reference.
    cdef unsigned int remainder = 0, weight
    cdef Py_ssize_t i, at
    if n < 4:
        return _fail(GS1_LINTER_IBAN_TOO_SHORT, 0, n, pos, ln)
    if not _is_alpha2(s, 2):
        return _fail(GS1_LINTER_ILLEGAL_IBAN_COUNTRY_CODE, 0, 2, pos, ln)
    if n > 34:
        return _fail(GS1_LINTER_IBAN_TOO_LONG, 0, n, pos, ln)
    if n <= 10:
        return _fail(GS1_LINTER_IBAN_TOO_SHORT, 0, n, pos, ln)
    for i in range(4, n + 4):
        at = i if i < n else i - n
        weight = IBAN_WEIGHT[s[at]]
        if weight == 0:
            return _fail(GS1_LINTER_INVALID_IBAN_CHARACTER, at, 1, pos, ln)
        remainder = (remainder * (10 if weight <= 10 else 100) + weight - 1) % 97
    if remainder != 1:
        return _fail(GS1_LINTER_INCORRECT_IBAN_CHECKSUM, 2, 2, pos, ln)
    return GS1_LINTER_OK


cdef int _pcenc(const unsigned char* s, Py_ssize_t n,
                Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i = 0
    while i < n:
        if s[i] == 37:  # '%'
            if i + 2 >= n:
                return _fail(GS1_LINTER_INVALID_PERCENT_SEQUENCE, i, n - i, pos, ln)
            if not (HEX_DIGIT[s[i + 1]] and HEX_DIGIT[s[i + 2]]):
                return _fail(GS1_LINTER_INVALID_PERCENT_SEQUENCE, i, 3, pos, ln)
            i += 3
        else:
            i += 1
    return GS1_LINTER_OK


cdef int _pieceoftotal(const unsigned char* s, Py_ssize_t n,
                       Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # PPTT: a piece number and a total of equal width, neither zero, P <= T.
    cdef Py_ssize_t i, half = n // 2
    cdef bint piece_zero = True, total_zero = True
    cdef int compare = 0
    cdef int bad = _first_non_digit(s, n)
    if bad >= 0:
        return _fail(GS1_LINTER_NON_DIGIT_CHARACTER, bad, 1, pos, ln)
    if n == 0 or n % 2 != 0:
        return _fail(GS1_LINTER_INVALID_LENGTH_FOR_PIECE_OF_TOTAL, 0, n, pos, ln)
    for i in range(half):
        if s[i] != 48:
            piece_zero = False
        if s[half + i] != 48:
            total_zero = False
        if compare == 0 and s[i] != s[half + i]:
            compare = -1 if s[i] < s[half + i] else 1
    if piece_zero:
        return _fail(GS1_LINTER_ZERO_PIECE_NUMBER, 0, half, pos, ln)
    if total_zero:
        return _fail(GS1_LINTER_ZERO_TOTAL_PIECES, half, half, pos, ln)
    if compare > 0:
        return _fail(GS1_LINTER_PIECE_NUMBER_EXCEEDS_TOTAL, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _posinseqslash(const unsigned char* s, Py_ssize_t n,
                        Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # "<pos>/<end>": two numbers without leading zeros, pos <= end.
    cdef Py_ssize_t slash = 0, i, end_len
    cdef int compare = 0
    while slash < n and _is_digit(s[slash]):
        slash += 1
    if slash == 0 or slash >= n - 1 or s[slash] != 47:
        return _fail(GS1_LINTER_POSITION_IN_SEQUENCE_MALFORMED, 0, n, pos, ln)
    for i in range(slash + 1, n):
        if not _is_digit(s[i]):
            return _fail(GS1_LINTER_POSITION_IN_SEQUENCE_MALFORMED, 0, n, pos, ln)
    end_len = n - slash - 1
    if s[0] == 48:
        return _fail(GS1_LINTER_ILLEGAL_ZERO_PREFIX, 0, slash, pos, ln)
    if s[slash + 1] == 48:
        return _fail(GS1_LINTER_ILLEGAL_ZERO_PREFIX, slash + 1, end_len, pos, ln)
    if slash == end_len:
        for i in range(slash):
            if s[i] != s[slash + 1 + i]:
                compare = -1 if s[i] < s[slash + 1 + i] else 1
                break
    elif slash > end_len:
        compare = 1  # no leading zeros, so the longer number is the larger
    if compare > 0:
        return _fail(GS1_LINTER_POSITION_EXCEEDS_END, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _nonzero(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    cdef bint has_nonzero = False
    for i in range(n):
        if not _is_digit(s[i]):
            return _fail(GS1_LINTER_NON_DIGIT_CHARACTER, i, 1, pos, ln)
        if s[i] != 48:
            has_nonzero = True
    if not has_nonzero:
        return _fail(GS1_LINTER_ILLEGAL_ZERO_VALUE, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _zero(const unsigned char* s, Py_ssize_t n,
               Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    if n == 0:
        return _fail(GS1_LINTER_NOT_ZERO, 0, 0, pos, ln)
    for i in range(n):
        if s[i] != 48:
            return _fail(GS1_LINTER_NOT_ZERO, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _nozeroprefix(const unsigned char* s, Py_ssize_t n,
                       Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if n > 0 and s[0] == 48:
        return _fail(GS1_LINTER_ILLEGAL_ZERO_PREFIX, 0, 1, pos, ln)
    return _csetnumeric(s, n, pos, ln)


cdef int _winding(const unsigned char* s, Py_ssize_t n,
                  Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if n != 1 or not (s[0] == 48 or s[0] == 49 or s[0] == 57):
        return _fail(GS1_LINTER_INVALID_WINDING_DIRECTION, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _yesno(const unsigned char* s, Py_ssize_t n,
                Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if n != 1 or not (s[0] == 48 or s[0] == 49):
        return _fail(GS1_LINTER_NOT_ZERO_OR_ONE, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _hyphen(const unsigned char* s, Py_ssize_t n,
                 Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t i
    if n == 0:
        return _fail(GS1_LINTER_NOT_HYPHEN, 0, 0, pos, ln)
    for i in range(n):
        if s[i] != 45:
            return _fail(GS1_LINTER_NOT_HYPHEN, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef inline int _ten_digit_coordinate(const unsigned char* s, Py_ssize_t n,
                                      unsigned long long maximum, int bad_length,
                                      int out_of_range, Py_ssize_t* pos,
                                      Py_ssize_t* ln) noexcept nogil:
    cdef unsigned long long value = 0
    cdef Py_ssize_t i
    cdef int bad
    if n != 10:
        return _fail(bad_length, 0, n, pos, ln)
    bad = _first_non_digit(s, n)
    if bad >= 0:
        return _fail(GS1_LINTER_NON_DIGIT_CHARACTER, bad, 1, pos, ln)
    for i in range(10):
        value = value * 10 + (s[i] - 48)
    if value > maximum:
        return _fail(out_of_range, 0, 10, pos, ln)
    return GS1_LINTER_OK


cdef int _latitude(const unsigned char* s, Py_ssize_t n,
                   Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _ten_digit_coordinate(s, n, <unsigned long long>1800000000, GS1_LINTER_LATITUDE_INVALID_LENGTH,
                                 GS1_LINTER_INVALID_LATITUDE, pos, ln)


cdef int _longitude(const unsigned char* s, Py_ssize_t n,
                    Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    return _ten_digit_coordinate(s, n, <unsigned long long>3600000000, GS1_LINTER_LONGITUDE_INVALID_LENGTH,
                                 GS1_LINTER_INVALID_LONGITUDE, pos, ln)


cdef int _mediatype(const unsigned char* s, Py_ssize_t n,
                    Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if n != 2 or not (_is_digit(s[0]) and _is_digit(s[1])) or not MEDIA_TYPE[_two_digits(s)]:
        return _fail(GS1_LINTER_INVALID_MEDIA_TYPE, 0, n, pos, ln)
    return GS1_LINTER_OK


cdef int _packagetype(const unsigned char* s, Py_ssize_t n,
                      Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    cdef Py_ssize_t lo = 0, hi = N_PACKAGE_TYPES, mid
    cdef unsigned int key
    if 1 <= n <= 3:
        key = _package_key(s, n)
        while lo < hi:
            mid = (lo + hi) // 2
            if PACKAGE_TYPE_KEYS[mid] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < N_PACKAGE_TYPES and PACKAGE_TYPE_KEYS[lo] == key:
            return GS1_LINTER_OK
    return _fail(GS1_LINTER_INVALID_PACKAGE_TYPE, 0, n, pos, ln)


cdef int _importeridx(const unsigned char* s, Py_ssize_t n,
                      Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if n != 1:
        return _fail(GS1_LINTER_IMPORTER_IDX_MUST_BE_ONE_CHARACTER, 0, n, pos, ln)
    if not IMPORTER_INDEX[s[0]]:
        return _fail(GS1_LINTER_INVALID_IMPORT_IDX_CHARACTER, 0, 1, pos, ln)
    return GS1_LINTER_OK


cdef int _hasnondigit(const unsigned char* s, Py_ssize_t n,
                      Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    if _first_non_digit(s, n) < 0:
        return _fail(GS1_LINTER_REQUIRES_NON_DIGIT_CHARACTER, 0, n, pos, ln)
    return GS1_LINTER_OK


# The coupon linters walk a chain of fields, each announced by a length digit
# (a "VLI"). Field positions and error spans follow GS1's reference linters
# and the North American coupon specifications they cite.

cdef int _couponposoffer(const unsigned char* s, Py_ssize_t n,
                         Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # AI 8112: format code, funder ID, offer code, serial number; nothing else.
    cdef Py_ssize_t p = 0, vli
    cdef int err = _csetnumeric(s, n, pos, ln)
    if err:
        return err
    if n == 0:
        return _fail(GS1_LINTER_COUPON_MISSING_FORMAT_CODE, 0, n, pos, ln)
    if s[0] != 48 and s[0] != 49:
        return _fail(GS1_LINTER_COUPON_INVALID_FORMAT_CODE, 0, 1, pos, ln)
    p = 1
    if p == n:
        return _fail(GS1_LINTER_COUPON_MISSING_FUNDER_VLI, 0, n, pos, ln)
    if s[p] > 54:
        return _fail(GS1_LINTER_COUPON_INVALID_FUNDER_LENGTH, p, 1, pos, ln)
    vli = s[p] - 48 + 6
    p += 1
    if n - p < vli:
        return _truncated(GS1_LINTER_COUPON_TRUNCATED_FUNDER, p, n, pos, ln)
    p += vli
    if n - p < 6:
        return _truncated(GS1_LINTER_COUPON_TRUNCATED_OFFER_CODE, p, n, pos, ln)
    p += 6
    if p == n:
        return _fail(GS1_LINTER_COUPON_MISSING_SERIAL_NUMBER_VLI, 0, n, pos, ln)
    vli = s[p] - 48 + 6
    p += 1
    if n - p < vli:
        return _truncated(GS1_LINTER_COUPON_TRUNCATED_SERIAL_NUMBER, p, n, pos, ln)
    p += vli
    if p != n:
        return _fail(GS1_LINTER_COUPON_EXCESS_DATA, p, n - p, pos, ln)
    return GS1_LINTER_OK


cdef inline int _coupon_gcp(const unsigned char* s, Py_ssize_t p, Py_ssize_t vli,
                            Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # A company prefix inside the coupon, checked as gcppos1 would; GS1 marks
    # the whole prefix on failure.
    cdef int err = _gcppos1(s + p, vli, pos, ln)
    if err:
        return _fail(err, p, vli, pos, ln)
    return GS1_LINTER_OK


cdef int _coupon_purchase(const unsigned char* s, Py_ssize_t n, Py_ssize_t* p_io,
                          int missing_vli, int invalid_length, int truncated,
                          int missing_code, int invalid_code, int truncated_family,
                          Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # Purchase requirement (VLI 1-5 + value), requirement code (0-4 or 9) and
    # a three-digit family code; p_io points at the VLI.
    cdef Py_ssize_t p = p_io[0], vli
    if p == n:
        return _fail(missing_vli, 0, n, pos, ln)
    if s[p] < 49 or s[p] > 53:
        return _fail(invalid_length, p, 1, pos, ln)
    vli = s[p] - 48
    p += 1
    if n - p < vli:
        return _truncated(truncated, p, n, pos, ln)
    p += vli
    if p == n:
        return _fail(missing_code, 0, n, pos, ln)
    if s[p] > 52 and s[p] != 57:
        return _fail(invalid_code, p, 1, pos, ln)
    p += 1
    if n - p < 3:
        return _truncated(truncated_family, p, n, pos, ln)
    p_io[0] = p + 3
    return GS1_LINTER_OK


cdef int _coupon_extra_gcp(const unsigned char* s, Py_ssize_t n, Py_ssize_t* p_io,
                           int missing_vli, int invalid_length, int truncated,
                           Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # Company prefix of a second or third purchase: VLI 0-6 (+6 digits) or 9
    # for "same as the first".
    cdef Py_ssize_t p = p_io[0], vli
    cdef int err
    if p == n:
        return _fail(missing_vli, 0, n, pos, ln)
    if s[p] > 54 and s[p] != 57:
        return _fail(invalid_length, p, 1, pos, ln)
    vli = s[p] - 48 + 6 if s[p] != 57 else 0
    p += 1
    if n - p < vli:
        return _truncated(truncated, p, n, pos, ln)
    if vli > 0:
        err = _coupon_gcp(s, p, vli, pos, ln)
        if err:
            return err
        p += vli
    p_io[0] = p
    return GS1_LINTER_OK


cdef int _coupon_date(const unsigned char* s, Py_ssize_t n, Py_ssize_t p,
                      int too_short, int invalid, Py_ssize_t* pos,
                      Py_ssize_t* ln) noexcept nogil:
    if n - p < 6:
        return _truncated(too_short, p, n, pos, ln)
    if _date(s + p, 6, 2, False, pos, ln):
        return _fail(invalid, p, 6, pos, ln)
    return GS1_LINTER_OK


cdef int _couponcode(const unsigned char* s, Py_ssize_t n,
                     Py_ssize_t* pos, Py_ssize_t* ln) noexcept nogil:
    # AI 8110, the North American Coupon Code: mandatory fields, then optional
    # fields 1, 2, 3, 4, 5, 6 and 9, each introduced by its number, in order.
    cdef Py_ssize_t p = 0, vli, expiry = -1, i
    cdef int err = _csetnumeric(s, n, pos, ln)
    if err:
        return err

    if p == n:
        return _fail(GS1_LINTER_COUPON_MISSING_GCP_VLI, 0, n, pos, ln)
    if s[p] > 54:
        return _fail(GS1_LINTER_COUPON_INVALID_GCP_LENGTH, p, 1, pos, ln)
    vli = s[p] - 48 + 6
    p += 1
    if n - p < vli:
        return _truncated(GS1_LINTER_COUPON_TRUNCATED_GCP, p, n, pos, ln)
    err = _coupon_gcp(s, p, vli, pos, ln)
    if err:
        return err
    p += vli

    if n - p < 6:
        return _truncated(GS1_LINTER_COUPON_TRUNCATED_OFFER_CODE, p, n, pos, ln)
    p += 6

    if p == n:
        return _fail(GS1_LINTER_COUPON_MISSING_SAVE_VALUE_VLI, 0, n, pos, ln)
    if s[p] < 49 or s[p] > 53:
        return _fail(GS1_LINTER_COUPON_INVALID_SAVE_VALUE_LENGTH, p, 1, pos, ln)
    vli = s[p] - 48
    p += 1
    if n - p < vli:
        return _truncated(GS1_LINTER_COUPON_TRUNCATED_SAVE_VALUE, p, n, pos, ln)
    p += vli

    err = _coupon_purchase(s, n, &p,
                           GS1_LINTER_COUPON_MISSING_1ST_PURCHASE_REQUIREMENT_VLI,
                           GS1_LINTER_COUPON_INVALID_1ST_PURCHASE_REQUIREMENT_LENGTH,
                           GS1_LINTER_COUPON_TRUNCATED_1ST_PURCHASE_REQUIREMENT,
                           GS1_LINTER_COUPON_MISSING_1ST_PURCHASE_REQUIREMENT_CODE,
                           GS1_LINTER_COUPON_INVALID_1ST_PURCHASE_REQUIREMENT_CODE,
                           GS1_LINTER_COUPON_TRUNCATED_1ST_PURCHASE_FAMILY_CODE, pos, ln)
    if err:
        return err

    if p < n and s[p] == 49:  # 1: additional rules and a second purchase
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_ADDITIONAL_PURCHASE_RULES_CODE, 0, n, pos, ln)
        if s[p] > 51:
            return _fail(GS1_LINTER_COUPON_INVALID_ADDITIONAL_PURCHASE_RULES_CODE, p, 1, pos, ln)
        p += 1
        err = _coupon_purchase(s, n, &p,
                               GS1_LINTER_COUPON_MISSING_2ND_PURCHASE_REQUIREMENT_VLI,
                               GS1_LINTER_COUPON_INVALID_2ND_PURCHASE_REQUIREMENT_LENGTH,
                               GS1_LINTER_COUPON_TRUNCATED_2ND_PURCHASE_REQUIREMENT,
                               GS1_LINTER_COUPON_MISSING_2ND_PURCHASE_REQUIREMENT_CODE,
                               GS1_LINTER_COUPON_INVALID_2ND_PURCHASE_REQUIREMENT_CODE,
                               GS1_LINTER_COUPON_TRUNCATED_2ND_PURCHASE_FAMILY_CODE, pos, ln)
        if err:
            return err
        err = _coupon_extra_gcp(s, n, &p, GS1_LINTER_COUPON_MISSING_2ND_PURCHASE_GCP_VLI,
                                GS1_LINTER_COUPON_INVALID_2ND_PURCHASE_GCP_LENGTH,
                                GS1_LINTER_COUPON_TRUNCATED_2ND_PURCHASE_GCP, pos, ln)
        if err:
            return err

    if p < n and s[p] == 50:  # 2: a third purchase
        p += 1
        err = _coupon_purchase(s, n, &p,
                               GS1_LINTER_COUPON_MISSING_3RD_PURCHASE_REQUIREMENT_VLI,
                               GS1_LINTER_COUPON_INVALID_3RD_PURCHASE_REQUIREMENT_LENGTH,
                               GS1_LINTER_COUPON_TRUNCATED_3RD_PURCHASE_REQUIREMENT,
                               GS1_LINTER_COUPON_MISSING_3RD_PURCHASE_REQUIREMENT_CODE,
                               GS1_LINTER_COUPON_INVALID_3RD_PURCHASE_REQUIREMENT_CODE,
                               GS1_LINTER_COUPON_TRUNCATED_3RD_PURCHASE_FAMILY_CODE, pos, ln)
        if err:
            return err
        err = _coupon_extra_gcp(s, n, &p, GS1_LINTER_COUPON_MISSING_3RD_PURCHASE_GCP_VLI,
                                GS1_LINTER_COUPON_INVALID_3RD_PURCHASE_GCP_LENGTH,
                                GS1_LINTER_COUPON_TRUNCATED_3RD_PURCHASE_GCP, pos, ln)
        if err:
            return err

    if p < n and s[p] == 51:  # 3: expiration date
        p += 1
        err = _coupon_date(s, n, p, GS1_LINTER_COUPON_TOO_SHORT_FOR_EXPIRATION_DATE,
                           GS1_LINTER_COUPON_INVALID_EXIPIRATION_DATE, pos, ln)
        if err:
            return err
        expiry = p
        p += 6

    if p < n and s[p] == 52:  # 4: start date, not after the expiration date
        p += 1
        err = _coupon_date(s, n, p, GS1_LINTER_COUPON_TOO_SHORT_FOR_START_DATE,
                           GS1_LINTER_COUPON_INVALID_START_DATE, pos, ln)
        if err:
            return err
        if expiry >= 0:
            # YYMMDD compared as text, as GS1 does; the span covers both fields.
            for i in range(6):
                if s[p + i] != s[expiry + i]:
                    if s[p + i] > s[expiry + i]:
                        return _fail(GS1_LINTER_COUPON_EXPIRATION_BEFORE_START,
                                     p - 8, 14, pos, ln)
                    break
        p += 6

    if p < n and s[p] == 53:  # 5: serial number
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_SERIAL_NUMBER_VLI, 0, n, pos, ln)
        vli = s[p] - 48 + 6
        p += 1
        if n - p < vli:
            return _truncated(GS1_LINTER_COUPON_TRUNCATED_SERIAL_NUMBER, p, n, pos, ln)
        p += vli

    if p < n and s[p] == 54:  # 6: retailer GCP or GLN
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_RETAILER_GCP_OR_GLN_VLI, 0, n, pos, ln)
        if s[p] < 49 or s[p] > 55:
            return _fail(GS1_LINTER_COUPON_INVALID_RETAILER_GCP_OR_GLN_LENGTH, p, 1, pos, ln)
        vli = s[p] - 48 + 6
        p += 1
        if n - p < vli:
            return _truncated(GS1_LINTER_COUPON_TRUNCATED_RETAILER_GCP_OR_GLN, p, n, pos, ln)
        err = _coupon_gcp(s, p, vli, pos, ln)
        if err:
            return err
        p += vli

    if p < n and s[p] == 57:  # 9: save value code, applies-to, flags
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_SAVE_VALUE_CODE, 0, n, pos, ln)
        if not (s[p] == 48 or s[p] == 49 or s[p] == 50 or s[p] == 53 or s[p] == 54):
            return _fail(GS1_LINTER_COUPON_INVALID_SAVE_VALUE_CODE, p, 1, pos, ln)
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_SAVE_VALUE_APPLIES_TO_ITEM, 0, n, pos, ln)
        if s[p] > 50:
            return _fail(GS1_LINTER_COUPON_INVALID_SAVE_VALUE_APPLIES_TO_ITEM, p, 1, pos, ln)
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_STORE_COUPON_FLAG, 0, n, pos, ln)
        p += 1
        if p == n:
            return _fail(GS1_LINTER_COUPON_MISSING_DONT_MULTIPLY_FLAG, 0, n, pos, ln)
        if s[p] != 48 and s[p] != 49:
            return _fail(GS1_LINTER_COUPON_INVALID_DONT_MULTIPLY_FLAG, p, 1, pos, ln)
        p += 1

    if p != n:
        return _fail(GS1_LINTER_COUPON_EXCESS_DATA, p, n - p, pos, ln)
    return GS1_LINTER_OK


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

cdef linter_fn LINTER_FNS[LINTER_COUNT]
LINTER_FNS[0] = NULL
LINTER_FNS[LINTER_CSETNUMERIC] = _csetnumeric
LINTER_FNS[LINTER_CSET82] = _cset82
LINTER_FNS[LINTER_CSET39] = _cset39
LINTER_FNS[LINTER_CSET64] = _cset64
LINTER_FNS[LINTER_CSUM] = _csum
LINTER_FNS[LINTER_CSUMALPHA] = _csumalpha
LINTER_FNS[LINTER_GCPPOS1] = _gcppos1
LINTER_FNS[LINTER_GCPPOS2] = _gcppos2
LINTER_FNS[LINTER_YYMMDD] = _yymmdd
LINTER_FNS[LINTER_YYMMD0] = _yymmd0
LINTER_FNS[LINTER_YYYYMMDD] = _yyyymmdd
LINTER_FNS[LINTER_YYYYMMD0] = _yyyymmd0
LINTER_FNS[LINTER_HH] = _hh
LINTER_FNS[LINTER_HHMI] = _hhmi
LINTER_FNS[LINTER_MI] = _mi
LINTER_FNS[LINTER_SS] = _ss
LINTER_FNS[LINTER_ISO3166] = _iso3166
LINTER_FNS[LINTER_ISO3166999] = _iso3166999
LINTER_FNS[LINTER_ISO3166ALPHA2] = _iso3166alpha2
LINTER_FNS[LINTER_ISO4217] = _iso4217
LINTER_FNS[LINTER_ISO5218] = _iso5218
LINTER_FNS[LINTER_IBAN] = _iban
LINTER_FNS[LINTER_PCENC] = _pcenc
LINTER_FNS[LINTER_PIECEOFTOTAL] = _pieceoftotal
LINTER_FNS[LINTER_POSINSEQSLASH] = _posinseqslash
LINTER_FNS[LINTER_NONZERO] = _nonzero
LINTER_FNS[LINTER_ZERO] = _zero
LINTER_FNS[LINTER_NOZEROPREFIX] = _nozeroprefix
LINTER_FNS[LINTER_WINDING] = _winding
LINTER_FNS[LINTER_YESNO] = _yesno
LINTER_FNS[LINTER_HYPHEN] = _hyphen
LINTER_FNS[LINTER_LATITUDE] = _latitude
LINTER_FNS[LINTER_LONGITUDE] = _longitude
LINTER_FNS[LINTER_MEDIATYPE] = _mediatype
LINTER_FNS[LINTER_PACKAGETYPE] = _packagetype
LINTER_FNS[LINTER_IMPORTERIDX] = _importeridx
LINTER_FNS[LINTER_COUPONCODE] = _couponcode
LINTER_FNS[LINTER_COUPONPOSOFFER] = _couponposoffer
LINTER_FNS[LINTER_HASNONDIGIT] = _hasnondigit


cdef int run_linter(int linter_id, const unsigned char* s, Py_ssize_t n,
                    Py_ssize_t* err_pos, Py_ssize_t* err_len) noexcept nogil:
    err_pos[0] = 0
    err_len[0] = 0
    if linter_id == 0:
        return GS1_LINTER_OK
    if linter_id < 0 or linter_id >= LINTER_COUNT:
        # A bad id is a bug in the caller's tables; refuse rather than pass.
        return GS1_LINTER_UNKNOWN_LINTER
    return LINTER_FNS[linter_id](s, n, err_pos, err_len)


# ---------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------

def linter_id(str name) -> int:
    """Number of the linter called `name` in the Syntax Dictionary (KeyError if unknown)."""
    return _IDS[name]


cdef bytes _as_bytes(value):
    # Each character becomes one byte so that error positions are str
    # indices. Characters beyond U+00FF become 0xFF, a byte that is in no GS1
    # character set (a plain encode("latin-1", "replace") would turn them into
    # '?', which CSET 82 allows).
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return (<str>value).encode("latin-1")
        except UnicodeEncodeError:
            return bytes([min(ord(c), 255) for c in <str>value])
    raise TypeError(f"lint() needs str or bytes, not {type(value).__name__}")


def lint(str name, value):
    """Run one linter on `value` (str or bytes): (error code name or None,
    error position, error length). Position and length mark the offending
    span, in characters, as GS1's reference linters mark it."""
    cdef bytes raw = _as_bytes(value)
    cdef const char* data = raw
    cdef Py_ssize_t pos = 0, ln = 0
    cdef int err = run_linter(_IDS[name], <const unsigned char*>data, len(raw), &pos, &ln)
    if err == GS1_LINTER_OK:
        return (None, 0, 0)
    return (ERROR_NAMES[err], pos, ln)


def error_name(int code) -> str:
    """GS1's name of an error code, e.g. 'INCORRECT_CHECK_DIGIT'."""
    return ERROR_NAMES[code]


def error_message(int code) -> str:
    """The reason in plain words, for error messages shown to people."""
    return ERROR_MESSAGES[code]


# ---------------------------------------------------------------------------
# Check-digit helpers for GS1 keys. verify_check_digit() runs on every key of
# every scan: it reads the str's own ASCII buffer, allocates nothing and
# raises nothing for bad input.
# ---------------------------------------------------------------------------

_DIGIT_STRS = tuple("0123456789")


cdef int _ascii_view(object text, const unsigned char** data, Py_ssize_t* n) except -1:
    # The bytes of an all-ASCII str or of a bytes object, without copying.
    if type(text) is str:
        if not PyUnicode_IS_ASCII(text):
            return False
        data[0] = <const unsigned char*>PyUnicode_DATA(text)
        n[0] = PyUnicode_GET_LENGTH(text)
        return True
    if isinstance(text, bytes):
        data[0] = <const unsigned char*><const char*>(<bytes>text)
        n[0] = len(<bytes>text)
        return True
    if isinstance(text, str):  # a str subclass: take the slow, safe road
        return False
    raise TypeError(f"expected str, not {type(text).__name__}")


def verify_check_digit(key) -> bool:
    """True if `key` (GTIN, SSCC, GLN, ...: all digits) ends in its correct
    GS1 mod-10 check digit. Any non-digit, or an empty key, gives False.

    Same rule as the ``csum`` linter, for any length.
    """
    cdef const unsigned char* s
    cdef Py_ssize_t n
    cdef int check
    if not _ascii_view(key, &s, &n):
        if isinstance(key, str) and (<str>key).isascii():
            return verify_check_digit(str.encode(key, "ascii"))
        return False
    if n == 0:
        return False
    check = _mod10(s, n - 1)
    return check >= 0 and s[n - 1] == 48 + check


def compute_check_digit(digits) -> str:
    """The GS1 mod-10 check digit for `digits` (the key without its check
    digit; any length). ValueError if `digits` is empty or not all digits."""
    cdef const unsigned char* s
    cdef Py_ssize_t n
    cdef int check = -1
    if _ascii_view(digits, &s, &n) and n > 0:
        check = _mod10(s, n)
    elif isinstance(digits, str) and (<str>digits).isascii() and len(digits) > 0:
        return compute_check_digit(str.encode(digits, "ascii"))
    if check < 0:
        raise ValueError(f"need one or more digits 0-9, got {digits!r}")
    return _DIGIT_STRS[check]


def compute_check_pair(data) -> str:
    """The two check characters of a GMN (AI 8013) or MUDI (AI 8014) whose
    other characters are `data`. ValueError if `data` has a character outside
    CSET 82 or is longer than 97 characters."""
    cdef bytes raw = _as_bytes(data)
    cdef const unsigned char* s = <const unsigned char*><const char*>raw
    cdef Py_ssize_t n = len(raw), i
    cdef int value
    if n > N_PRIMES:
        raise ValueError(f"at most {N_PRIMES} characters before the check pair, got {n}")
    for i in range(n):
        if CSET82_VALUE[s[i]] < 0:
            raise ValueError(f"{chr(s[i])!r} at position {i} is not in GS1 character set 82")
    value = _check_pair(s, n)
    return chr(CSET32_BY_VALUE[value >> 5]) + chr(CSET32_BY_VALUE[value & 31])


def verify_check_pair(gmn) -> bool:
    """True if `gmn` ends in its correct check-character pair (the ``csumalpha``
    linter as a yes/no)."""
    cdef bytes raw
    cdef const unsigned char* s
    cdef Py_ssize_t n, pos = 0, ln = 0
    if not _ascii_view(gmn, &s, &n):
        if not isinstance(gmn, str):
            return False
        raw = _as_bytes(gmn)
        s = <const unsigned char*><const char*>raw
        n = len(raw)
    return _csumalpha(s, n, &pos, &ln) == GS1_LINTER_OK
