# cython: language_level=3
"""Hot loops of the label writers: serials into row templates, and QR symbol finishing.

A batch's rows differ only by the serial: GTIN, lot, expiry and the URI stem are the same
for every unit. So a writer compiles its row once into a :class:`RowTemplate` — literal
byte strings between *serial slots*, each slot with its own escaping (percent-encoding in
the DL URI, ``"`` doubled in a quoted CSV field, ``_`` doubled in ZPL DataMatrix data) —
and renders whole blocks of serials (written by ``SerialPermutation.encode_into``) in C.

>>> from ext.labels import RowTemplate, escape_table
>>> uri = escape_table({ord("/"): b"%2F"})
>>> row = RowTemplate([b"", b",https://id.gs1.org/01/09506000134352/21/", b"\\n"], [None, uri])
>>> out = bytearray(row.max_row_bytes(4) * 2)
>>> n = row.render(b"AB/DEFGH", 2, 4, out)
>>> bytes(out[:n]).decode()
'AB/D,https://id.gs1.org/01/09506000134352/21/AB%2FD\\nEFGH,https://id.gs1.org/01/09506000134352/21/EFGH\\n'

The QR part finishes what segno's encoder starts (mode, version, error level and the data
bits stay segno's): :func:`qr_message` adds the Reed-Solomon codewords and interleaves the
blocks, :class:`QrShape` places the message, chooses the data mask exactly as segno does
(ISO/IEC 18004 penalty rules, segno's reading of them — 80 % of segno's time is mask
selection) and adds format and version information, so proofs come out bit-identical to
``segno.make_qr(...)``, only several times faster. Then
:func:`svg_path` writes the symbol as one SVG path.
"""

from libc.stdint cimport uint8_t
from libc.string cimport memcpy, memset, memcmp
from libc.stdlib cimport malloc, free

cdef enum:
    MAX_SLOTS = 64
    MAX_ESCAPE = 6  # bytes one input character may become (e.g. %HH, \\u0022)


def escape_table(mapping) -> bytes:
    """A 256-entry escape table for a slot: ``mapping`` {byte value: replacement bytes};
    every other byte stands for itself. Packed as 256 x (length, 6 bytes)."""
    table = bytearray(256 * (MAX_ESCAPE + 1))
    for c in range(256):
        rep = mapping.get(c, bytes((c,)))
        if len(rep) > MAX_ESCAPE:
            raise ValueError(f"the replacement of {c} is longer than {MAX_ESCAPE} bytes")
        table[c * (MAX_ESCAPE + 1)] = len(rep)
        table[c * (MAX_ESCAPE + 1) + 1:c * (MAX_ESCAPE + 1) + 1 + len(rep)] = rep
    return bytes(table)


cdef class RowTemplate:
    """``parts[0] slot0 parts[1] slot1 … parts[n]``: n + 1 literals around n serial slots.

    ``tables[i]`` is None (the serial as it is) or an :func:`escape_table`. The serial of a
    row may appear in any number of slots (serial column, DL URI, element string, HRI).
    """

    cdef bytes _literals
    cdef Py_ssize_t _offsets[MAX_SLOTS + 2]
    cdef int _slots
    cdef bytes _tables
    cdef int _escaped[MAX_SLOTS]
    cdef readonly Py_ssize_t literal_bytes

    def __init__(self, parts, tables):
        parts = [bytes(p) for p in parts]
        tables = list(tables)
        if len(parts) != len(tables) + 1:
            raise ValueError(f"{len(parts)} literals need {len(parts) - 1} slots, not {len(tables)}")
        if len(tables) > MAX_SLOTS:
            raise ValueError(f"at most {MAX_SLOTS} serial slots per row")
        self._slots = len(tables)
        self._literals = b"".join(parts)
        self.literal_bytes = len(self._literals)
        cdef Py_ssize_t pos = 0
        for i, p in enumerate(parts):
            self._offsets[i] = pos
            pos += len(p)
        self._offsets[len(parts)] = pos
        packed = bytearray()
        for i, t in enumerate(tables):
            if t is None or t == escape_table({}):
                self._escaped[i] = -1
            else:
                if len(t) != 256 * (MAX_ESCAPE + 1):
                    raise ValueError("an escape table must come from escape_table()")
                self._escaped[i] = len(packed) // (256 * (MAX_ESCAPE + 1))
                packed += t
        self._tables = bytes(packed)

    @property
    def slots(self) -> int:
        return self._slots

    def max_row_bytes(self, Py_ssize_t serial_length) -> int:
        """An upper bound of one rendered row's size."""
        return self.literal_bytes + self._slots * serial_length * MAX_ESCAPE

    def render(self, const unsigned char[::1] serials not None, Py_ssize_t count,
               Py_ssize_t serial_length, unsigned char[::1] out not None) -> int:
        """Render ``count`` rows, serial *i* being ``serials[i*L:(i+1)*L]``, into ``out``
        (at least ``count * max_row_bytes(L)`` bytes). Returns the bytes written."""
        if serial_length <= 0 or count < 0 or serials.shape[0] < count * serial_length:
            raise ValueError("serials is shorter than count * serial_length")
        if out.shape[0] < count * self.max_row_bytes(serial_length):
            raise ValueError(f"out needs {count * self.max_row_bytes(serial_length)} bytes")
        if count == 0:
            return 0
        cdef const uint8_t* lit = <const uint8_t*><const char*>self._literals
        cdef const uint8_t* tables = <const uint8_t*><const char*>self._tables if self._tables else NULL
        cdef const uint8_t* s = &serials[0]
        cdef uint8_t* o = &out[0]
        cdef Py_ssize_t i, k, j = 0, n
        cdef int slot, slots = self._slots, t
        cdef const uint8_t* entry
        with nogil:
            for i in range(count):
                for slot in range(slots + 1):
                    n = self._offsets[slot + 1] - self._offsets[slot]
                    memcpy(o + j, lit + self._offsets[slot], n)
                    j += n
                    if slot == slots:
                        break
                    t = self._escaped[slot]
                    if t < 0:
                        memcpy(o + j, s, serial_length)
                        j += serial_length
                    else:
                        for k in range(serial_length):
                            entry = tables + (<Py_ssize_t>t * 256 + s[k]) * (MAX_ESCAPE + 1)
                            memcpy(o + j, entry + 1, entry[0])
                            j += entry[0]
                s += serial_length
        return j


# ---------------------------------------------------------------------------------------------
# QR: codeword placement, segno's mask selection, format information

cdef inline bint _mask_bit(int m, int i, int j) noexcept nogil:
    cdef int t
    if m == 0:
        return (i + j) % 2 == 0
    if m == 1:
        return i % 2 == 0
    if m == 2:
        return j % 3 == 0
    if m == 3:
        return (i + j) % 3 == 0
    if m == 4:
        return (i // 2 + j // 3) % 2 == 0
    t = i * j
    if m == 5:
        return (t % 2) + (t % 3) == 0
    if m == 6:
        return ((t % 2) + (t % 3)) % 2 == 0
    return (((i + j) % 2) + t % 3) % 2 == 0


cdef inline int _n3(const uint8_t* seq, int size) noexcept nogil:
    """segno's reading of the 1:1:3:1:1 finder-like pattern rule (N3 = 40 per hit)."""
    cdef int count = 0, idx = 0, offset, k, lo, hi
    cdef bint light
    while idx <= size - 7:
        if not (seq[idx] == 1 and seq[idx + 1] == 0 and seq[idx + 2] == 1 and seq[idx + 3] == 1
                and seq[idx + 4] == 1 and seq[idx + 5] == 0 and seq[idx + 6] == 1):
            idx += 1
            continue
        offset = idx + 7
        light = idx == 0 or idx == size - 7
        if not light:
            light = True
            lo = idx - 4 if idx - 4 > 0 else 0
            for k in range(lo, idx):
                if seq[k]:
                    light = False
                    break
        if not light:
            light = True
            hi = offset + 4 if offset + 4 < size else size
            for k in range(offset, hi):
                if seq[k]:
                    light = False
                    break
        if light:
            count += 40
        else:
            offset = idx + 4
        idx = offset
    return count


cdef int _penalty(const uint8_t* m, int size, uint8_t* column) noexcept nogil:
    """segno.encoder.evaluate_mask, line for line (same quirks, same score)."""
    cdef int n1 = 0, n2 = 0, n3 = 0, dark = 0, i, j
    cdef int row_prev, col_prev, row_run, col_run, rb, cb
    cdef double percent
    for i in range(size):
        row_prev = -1
        col_prev = -1
        row_run = 0
        col_run = 0
        for j in range(size):
            rb = m[i * size + j]
            cb = m[j * size + i]
            column[j] = cb
            dark += rb
            if rb == row_prev:
                row_run += 1
            else:
                if row_run >= 5:
                    n1 += row_run - 2
                row_run = 1
            if cb == col_prev:
                col_run += 1
            else:
                if col_run >= 5:
                    n1 += col_run - 2
                col_run = 1
            if i > 0 and j > 0 and rb == row_prev and rb == m[(i - 1) * size + j] and rb == m[(i - 1) * size + j - 1]:
                n2 += 3
            row_prev = rb
            col_prev = cb
        n3 += _n3(m + i * size, size)
        n3 += _n3(column, size)
        if row_run >= 5:
            n1 += row_run - 2
        if col_run >= 5:
            n1 += col_run - 2
    percent = <double>dark / (size * size)
    cdef double dev = percent * 100 - 50
    if dev < 0:
        dev = -dev
    return n1 + n2 + n3 + 10 * <int>(dev / 5)


def qr_message(const unsigned char[::1] databits not None, ec_infos, gen_polys,
               const unsigned char[::1] gf_log not None, const unsigned char[::1] gf_exp not None,
               int remainder) -> bytes:
    """The final message of ISO/IEC 18004 7.6 as segno.encoder.make_final_message builds it:
    ``databits`` (0/1 bytes, padded data) packed into codewords, split into blocks
    (``ec_infos``: (num_blocks, num_total, num_data) tuples), Reed-Solomon error correction
    per block (``gen_polys[n]``: the generator polynomial's logs; GF(256) log/exp tables),
    data then error codewords interleaved, as 0/1 bytes, plus ``remainder`` zero bits."""
    cdef Py_ssize_t nbits = databits.shape[0], ncw = (nbits + 7) // 8, i, k, n
    cdef bytearray cw = bytearray(ncw)
    cdef uint8_t* c = cw
    for i in range(nbits):
        if databits[i]:
            c[i // 8] |= 0x80 >> (i % 8)
    data_blocks = []
    error_blocks = []
    cdef Py_ssize_t pos = 0, len_data, num_err
    cdef bytearray block
    cdef uint8_t* bb
    cdef const unsigned char[::1] gen
    cdef int coef, lcoef
    for num_blocks, num_total, num_data in ec_infos:
        num_err = num_total - num_data
        gen = gen_polys[num_err]
        for _ in range(num_blocks):
            len_data = min(num_data, ncw - pos) if pos < ncw else 0
            block = bytearray(cw[pos:pos + len_data])
            pos += len_data
            data_blocks.append(bytes(block))
            block.extend(bytes(num_err))
            bb = block
            for k in range(len_data):
                coef = bb[k]
                if coef != 0:
                    lcoef = gf_log[coef]
                    for n in range(num_err):
                        bb[k + n + 1] ^= gf_exp[lcoef + gen[n]]
            error_blocks.append(bytes(block[len_data:]))
    out = bytearray()
    for blocks in (data_blocks, error_blocks):
        longest = max(len(b) for b in blocks)
        for i in range(longest):
            for b in blocks:
                if i < len(b):
                    out.append(b[i])
    cdef Py_ssize_t total = len(out)
    cdef bytearray bits = bytearray(total * 8 + remainder)
    cdef uint8_t* o = bits
    cdef uint8_t* src = out
    with nogil:
        for i in range(total):
            for k in range(8):
                o[i * 8 + k] = (src[i] >> (7 - k)) & 1
    return bytes(bits)


cdef class QrShape:
    """One QR version and error level: its function patterns, the data masks over its
    encoding region and its format information, ready to finish any number of symbols.

    ``template``: size*size bytes as segno's make_matrix + finder + alignment patterns leave
    them (0/1 function modules, 2 free); ``format_info``: the 8 format words of this error
    level, by mask; ``version_info``: (index, bit) pairs to write after masking (v7+).
    """

    cdef readonly int size
    cdef bytes _template
    cdef bytes _masks
    cdef tuple _format
    cdef tuple _version_info

    def __init__(self, bytes template, int size, format_info, version_info=()):
        cdef Py_ssize_t cells = <Py_ssize_t>size * size, p
        if len(template) != cells:
            raise ValueError("template is not size*size")
        if len(format_info) != 8:
            raise ValueError("format_info needs one word per mask")
        self.size = size
        self._template = template
        self._format = tuple(int(x) for x in format_info)
        self._version_info = tuple((int(i), int(b)) for i, b in version_info)
        masks = bytearray(8 * cells)
        cdef uint8_t* m = masks
        cdef const uint8_t* t = template
        cdef int mk
        for mk in range(8):
            for p in range(cells):
                # the encoding region: still free (0x2); the dark module is not
                if t[p] == 2 and p != (size - 8) * size + 8:
                    m[mk * cells + p] = _mask_bit(mk, <int>(p // size), <int>(p % size))
        self._masks = bytes(masks)

    def finish(self, const unsigned char[::1] bits not None, int proposed_mask=-1):
        """Place ``bits`` (0/1 bytes: the final message), choose the mask as segno does
        (lowest penalty, the first on ties) unless ``proposed_mask`` is 0-7, apply it, add
        format and version information. Returns (mask, bytes of size*size 0/1 modules)."""
        cdef int size = self.size
        cdef Py_ssize_t cells = <Py_ssize_t>size * size, idx = 0, p
        cdef Py_ssize_t nbits = bits.shape[0]
        cdef bytearray work = bytearray(self._template)
        cdef bytearray best = bytearray(cells)
        cdef bytearray trial = bytearray(cells)
        cdef bytearray column = bytearray(size)
        cdef uint8_t* w = work
        cdef uint8_t* b = best
        cdef uint8_t* tr = trial
        cdef uint8_t* col = column
        cdef const uint8_t* masks = self._masks
        cdef const uint8_t* src = &bits[0] if nbits else NULL
        cdef int column_pair, right, vertical, z, jj, ii, mk, score
        cdef int best_score = 0x7fffffff, best_mask = 0
        cdef bint upwards
        with nogil:
            # ISO/IEC 18004 7.7.3: two-module columns, alternately up and down, right to left
            column_pair = size - 1
            while column_pair > 0:
                right = column_pair - 1 if column_pair <= 6 else column_pair  # skip the timing column
                for vertical in range(size):
                    for z in range(2):
                        jj = right - z
                        upwards = (right & 2) == 0
                        if jj < 6:
                            upwards = not upwards
                        ii = (size - 1 - vertical) if upwards else vertical
                        if w[ii * size + jj] == 2 and idx < nbits:
                            w[ii * size + jj] = src[idx]
                            idx += 1
                column_pair -= 2
        if idx != nbits:
            raise ValueError(f"placed {idx} of {nbits} bits: the message does not fit this shape")
        with nogil:
            if proposed_mask >= 0:
                best_mask = proposed_mask
                for p in range(cells):
                    b[p] = w[p] ^ masks[proposed_mask * cells + p]
            else:
                for mk in range(8):
                    for p in range(cells):
                        tr[p] = w[p] ^ masks[mk * cells + p]
                    # segno scores before format information is written (ISO 7.8)
                    score = _penalty(tr, size, col)
                    if score < best_score:
                        best_score = score
                        best_mask = mk
                        memcpy(b, tr, cells)
        cdef int fmt = self._format[best_mask]
        cdef int i, vbit, hbit, voffset = 0, hoffset = 0
        for i in range(8):
            vbit = (fmt >> i) & 1
            hbit = (fmt >> (14 - i)) & 1
            if i == 6:
                voffset += 1
                hoffset = 1
            b[(i + voffset) * size + 8] = vbit
            b[8 * size + i + hoffset] = hbit
            b[8 * size + size - 1 - i] = vbit
            b[(size - 1 - i) * size + 8] = hbit
        b[(size - 8) * size + 8] = 1
        for p, bit in self._version_info:
            b[p] = bit
        return best_mask, bytes(best)


def svg_path(const unsigned char[::1] modules not None, int size, int scale=4, int border=4,
             bytes dark=b"#000") -> bytes:
    """A square symbol (size*size bytes, 1 = dark) as a compact SVG: one path of horizontal
    runs, ``scale`` units per module, ``border`` light modules around it."""
    if modules.shape[0] != <Py_ssize_t>size * size:
        raise ValueError("modules is not size*size")
    cdef int total = (size + 2 * border) * scale
    parts = [b'<?xml version="1.0" encoding="utf-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
             b'width="%d" height="%d" viewBox="0 0 %d %d"><path transform="scale(%d)" stroke="%s" d="'
             % (total, total, total, total, scale, dark)]
    cdef int i, j, run
    cdef int x_prev
    cdef const uint8_t* m = &modules[0]
    out = bytearray()
    for i in range(size):
        j = 0
        x_prev = -1
        while j < size:
            if m[i * size + j]:
                run = 1
                while j + run < size and m[i * size + j + run]:
                    run += 1
                if x_prev < 0:
                    out += b"M%d %d.5h%d" % (j + border, i + border, run)
                else:
                    out += b"m%d 0h%d" % (j - x_prev, run)
                x_prev = j + run
                j += run
            else:
                j += 1
    parts.append(bytes(out))
    parts.append(b'"/></svg>\n')
    return b"".join(parts)
