"""QR symbols for proofs: segno's encoder, finished in C, bit-identical to ``segno.make_qr``.

segno spends about 80 % of a symbol on choosing the data mask (eight trial maskings and
ISO/IEC 18004 penalty scores in pure Python) and most of the rest on Reed-Solomon and
module placement. Here segno still decides everything that makes the symbol what it is —
segmentation and mode, version, the error-level boost, the data bits — and ``ext.labels``
does the arithmetic: error correction, placement, segno's own mask choice, format and
version information. The result is the same matrix segno makes, module for module (the
tests compare them), at several times the rate.

>>> import segno
>>> from serializer.qr import QrEncoder
>>> uri = "https://id.gs1.org/01/09506000134352/21/7Y4KQ2M9XW3R"
>>> symbol = QrEncoder("m").encode(uri)
>>> reference = segno.make_qr(uri, error="m")
>>> (symbol.version, symbol.mask) == (reference.version, reference.mask)
True
>>> symbol.rows() == tuple(bytes(row) for row in reference.matrix)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from segno import consts
from segno import encoder as _enc

from ext.labels import QrShape, qr_message, svg_path

# ISO/IEC 18004 7.6: remainder bits after the final codewords, by version
_REMAINDER = {**{v: 7 for v in range(2, 7)}, **{v: 3 for v in (*range(14, 21), *range(28, 35))},
              **{v: 4 for v in range(21, 28)}}
# the error level's offset into the format information table (segno.encoder.calc_format_info)
_FORMAT_OFFSET = {consts.ERROR_LEVEL_L: 0x08, consts.ERROR_LEVEL_M: 0x00,
                  consts.ERROR_LEVEL_Q: 0x18, consts.ERROR_LEVEL_H: 0x10}
_GF_LOG = bytes(consts.GALIOS_LOG)
_GF_EXP = bytes(consts.GALIOS_EXP)


@dataclass(frozen=True, slots=True)
class QrSymbol:
    """A finished QR Code symbol: ``modules`` is size*size bytes, 1 = dark, row by row."""

    payload: str
    version: int
    error: str
    mask: int
    size: int
    modules: bytes

    def rows(self) -> tuple[bytes, ...]:
        return tuple(self.modules[i * self.size:(i + 1) * self.size] for i in range(self.size))

    def svg(self, scale: int = 4, border: int = 4) -> bytes:
        return svg_path(self.modules, self.size, scale, border)

    def matrix(self) -> tuple[bytearray, ...]:
        """segno's matrix form (a tuple of bytearrays), for segno's writers."""
        return tuple(bytearray(row) for row in self.rows())


class QrEncoder:
    """Makes QR symbols as ``segno.make_qr(payload, error=error)`` does (boost included)."""

    def __init__(self, error: str = "m") -> None:
        self._error = _enc.normalize_errorlevel(error)
        self._error_name = error.upper()

    def encode(self, payload: str, mask: int | None = None) -> QrSymbol:
        segments = _enc.prepare_data(payload, None, None)
        version = _enc.find_version(segments, self._error, eci=False, micro=False)
        error = _enc.boost_error_level(version, self._error, segments, False, is_sa=False)
        buffer = _enc.Buffer()
        versions = _enc.version_range(version)
        for segment in segments:
            _enc.write_segment(buffer, segment, None, versions, False)
        capacity = consts.SYMBOL_CAPACITY[version][error]
        _enc.write_terminator(buffer, capacity, None, len(buffer))
        _enc.write_padding_bits(buffer, version, len(buffer))
        _enc.write_pad_codewords(buffer, version, capacity, len(buffer))
        blocks, polys = _ec_blocks(version, error)
        bits = qr_message(bytes(buffer.getbits()), blocks, polys, _GF_LOG, _GF_EXP,
                          _REMAINDER.get(version, 0))
        shape = _shape(version, error)
        chosen, modules = shape.finish(bits, -1 if mask is None else mask)
        return QrSymbol(payload, version, _enc.get_error_name(error), chosen, shape.size, modules)


@cache
def _ec_blocks(version: int, error: int) -> tuple[tuple[tuple[int, int, int], ...], dict[int, bytes]]:
    infos = tuple((e.num_blocks, e.num_total, e.num_data) for e in consts.ECC[version][error])
    polys = {total - data: bytes(consts.GEN_POLY[total - data]) for _, total, data in infos}
    return infos, polys


@cache
def _shape(version: int, error: int) -> QrShape:
    """Function patterns as segno lays them out before placement; version info after."""
    size = _enc.calc_matrix_size(version)
    matrix = _enc.make_matrix(size, size)
    _enc.add_finder_patterns(matrix, size, size)
    _enc.add_alignment_patterns(matrix, size, size)
    template = b"".join(bytes(row) for row in matrix)
    versioned = tuple(bytearray(size) for _ in range(size))
    marker = tuple(bytearray(b"\x02" * size) for _ in range(size))
    _enc.add_version_info(marker, version)
    _enc.add_version_info(versioned, version)
    version_info = [(i * size + j, versioned[i][j]) for i in range(size) for j in range(size)
                    if marker[i][j] != 2]
    formats = [consts.FORMAT_INFO[m + _FORMAT_OFFSET[error]] for m in range(8)]
    return QrShape(template, size, formats, version_info)


