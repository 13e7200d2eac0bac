"""QR codes of verification URLs in a tenth of a millisecond: the code as an affine map of its bits.

Every sealed document carries a QR code of its own verification URL (a different one per document),
and segno, pure Python, took about 4 ms to encode one: after the PDF was written directly, most of
a document's CPU. For a fixed version, error correction level and mask, a QR code's modules are an
affine function of its data codewords' bits over GF(2): Reed–Solomon is linear, interleaving and
placement move bits, the mask and the format and version information are constants
(ISO/IEC 18004:2015, 7.5–7.10). So, once per version, this module asks segno for the symbol of
all-zero codewords and for where each bit of the stream lands, computes each data bit's
Reed–Solomon contribution, and keeps one big integer per data bit: the modules it flips. Encoding
is then building the data codewords and XOR-ing the integers of their set bits.

The symbol is the one ``segno.make_qr(text, error="m", boost_error=False, mask=0)`` makes (byte
mode, the smallest version, mask 0: ISO/IEC 18004 lets the encoder choose any mask); the tests
compare them module for module. Text that segno would not encode in byte mode (all digits, or
only the alphanumeric set) or that is not ASCII goes to segno.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import segno
from segno import consts, encoder

_ERROR = consts.ERROR_LEVEL_M
# segno's tables (ISO/IEC 18004 Tables 7 and 9), typed for mypy: capacity in bits and the
# Reed–Solomon blocks per version and error level.
_CAPACITY: dict[int, dict[int, int]] = consts.SYMBOL_CAPACITY  # type: ignore[assignment]
_ECC: dict[int, dict[int, Any]] = consts.ECC  # type: ignore[assignment]
_MASK = 0
_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


@dataclass(frozen=True, slots=True)
class _Version:
    """What encoding in one version needs."""

    version: int
    size: int
    capacity_bits: int  # data capacity at level M
    zero: int  # the symbol of all-zero data codewords, row-major, (0, 0) the highest bit
    flips: tuple[int, ...]  # per data bit (codeword-major, most significant bit first)
    nibbles: tuple[tuple[int, ...], ...]  # per half codeword (high, low, ...): its 16 values' flips


def _stream_order(version: int, size: int) -> list[int]:
    """Where each bit of the final message goes: its row-major module index."""
    matrix = encoder.make_matrix(size, size)
    encoder.add_finder_patterns(matrix, size, size)
    encoder.add_alignment_patterns(matrix, size, size)
    total = sum(1 for row in matrix for cell in row if cell == 0x2)
    # add_codewords copies stream items into the free modules in placement order: give it the
    # positions' own labels (>= 3, so that they are told apart from modules and free cells).
    labels = list(range(3, 3 + total))
    grid = [list(row) for row in matrix]
    encoder.add_codewords(grid, labels, version)
    order = [0] * total
    for r, row in enumerate(grid):
        for c, cell in enumerate(row):
            if cell >= 3:
                order[cell - 3] = r * size + c
    return order


def _ec_of_unit(gen: tuple[int, ...], ec: int, length: int, position: int) -> bytes:
    """The error correction codewords of a block of ``length`` data codewords that are zero but
    for a 1 at ``position`` (segno's synthetic division, ISO/IEC 18004 7.5.2)."""
    block = bytearray(length + ec)
    block[position] = 1
    log, exp = consts.GALIOS_LOG, consts.GALIOS_EXP
    for k in range(position, length):
        coef = block[k]
        if coef:
            lcoef = log[coef]
            for n in range(ec):
                block[k + n + 1] ^= exp[lcoef + gen[n]]
    return bytes(block[length:])


def _times(value: int, codewords: bytes) -> bytes:
    """``codewords`` multiplied by ``value`` in GF(256): Reed–Solomon is linear over it."""
    log, exp = consts.GALIOS_LOG, consts.GALIOS_EXP
    lv = log[value]
    return bytes(exp[lv + log[c]] if c else 0 for c in codewords)


@functools.lru_cache(maxsize=40)
def _prepare(version: int) -> _Version:
    size = encoder.calc_matrix_size(version)
    capacity = _CAPACITY[version][_ERROR]
    infos = _ECC[version][_ERROR]
    blocks = [
        (info.num_data, info.num_total - info.num_data)
        for info in infos
        for _ in range(info.num_blocks)
    ]
    data_total = sum(d for d, _ in blocks)
    ec_length = blocks[0][1]
    # The symbol of all-zero codewords, masked, with format and version information.
    matrix = encoder.make_matrix(size, size)
    encoder.add_finder_patterns(matrix, size, size)
    encoder.add_alignment_patterns(matrix, size, size)
    free = sum(1 for row in matrix for cell in row if cell == 0x2)
    encoder.add_codewords(matrix, [0] * free, version)
    _, matrix = encoder.find_and_apply_best_mask(matrix, size, size, _MASK)
    encoder.add_format_info(matrix, version, _ERROR, _MASK)
    encoder.add_version_info(matrix, version)
    zero = int("".join("1" if cell else "0" for row in matrix for cell in row), 2)
    order = _stream_order(version, size)
    last = size * size - 1

    def module(stream_bit: int) -> int:
        return 1 << (last - order[stream_bit])

    # Where each data codeword stands in the interleaved stream (data column by column across
    # the blocks, then the error correction codewords the same way).
    longest = max(d for d, _ in blocks)
    stream_index: dict[tuple[int, int], int] = {}
    s = 0
    for col in range(longest):
        for q, (length, _) in enumerate(blocks):
            if col < length:
                stream_index[(q, col)] = s
                s += 1
    units: dict[tuple[int, int], bytes] = {}
    flips: list[int] = []
    for q, (length, ec) in enumerate(blocks):
        gen = tuple(consts.GEN_POLY[ec])
        for j in range(length):
            unit = units.get((length, j))
            if unit is None:
                unit = units[(length, j)] = _ec_of_unit(gen, ec, length, j)
            for bit in range(7, -1, -1):
                flip = module(stream_index[(q, j)] * 8 + (7 - bit))
                for e, byte in enumerate(_times(1 << bit, unit)):
                    base = (data_total + e * len(blocks) + q) * 8
                    for b in range(8):
                        if byte & (0x80 >> b):
                            flip ^= module(base + b)
                flips.append(flip)
    assert ec_length == blocks[-1][1] and s == data_total
    nibbles = []
    for half in range(len(flips) // 4):
        bits = flips[4 * half : 4 * half + 4]  # most significant first
        table = [0] * 16
        for value in range(1, 16):
            low = value & -value
            table[value] = table[value ^ low] ^ bits[3 - (low.bit_length() - 1)]
        nibbles.append(tuple(table))
    return _Version(version, size, capacity, zero, tuple(flips), tuple(nibbles))


def _byte_mode(text: str) -> bool:
    return text.isascii() and not text.isdigit() and not set(text) <= _ALPHANUMERIC


def _version_for(length: int) -> int:
    for version in range(1, 41):
        cci = 8 if version < 10 else 16
        if _CAPACITY[version][_ERROR] >= 4 + cci + 8 * length:
            return version
    raise ValueError("too long for a QR code")


def _codewords(data: bytes, version: int, capacity: int) -> bytes:
    """The data codewords: mode, character count, data, terminator, padding (7.4), as segno
    writes them."""
    cci = 8 if version < 10 else 16
    value, length = 0b0100, 4
    value = (value << cci) | len(data)
    length += cci
    value = (value << 8 * len(data)) | int.from_bytes(data, "big")
    length += 8 * len(data)
    terminator = min(capacity - length, 4)
    value <<= terminator
    length += terminator
    pad = 8 - length % 8  # segno adds a zero byte when already on a boundary
    value <<= pad
    length += pad
    for i in range(capacity // 8 - length // 8):
        value = (value << 8) | (0xEC if i % 2 == 0 else 0x11)
        length += 8
    raw = value.to_bytes(length // 8, "big")
    return raw[: capacity // 8]


def qr_rows(text: str) -> tuple[str, ...]:
    """The QR code of ``text`` as rows of "0" and "1" (dark), from the top; segno's symbol."""
    if not _byte_mode(text):
        code = segno.make_qr(text, error="m", boost_error=False, mask=_MASK)
        return tuple("".join("1" if m else "0" for m in row) for row in code.matrix)
    data = text.encode("ascii")
    spec = _prepare(_version_for(len(data)))
    symbol = spec.zero
    nibbles = spec.nibbles
    for i, byte in enumerate(_codewords(data, spec.version, spec.capacity_bits)):
        if byte:
            symbol ^= nibbles[2 * i][byte >> 4] ^ nibbles[2 * i + 1][byte & 15]
    n = spec.size
    flat = format(symbol, f"0{n * n}b")
    return tuple(flat[r * n : (r + 1) * n] for r in range(n))


_CHUNK = 8
_CHUNK_OPS: dict[tuple[int, str], str] = {}


def _chunk_ops(column: int, chunk: str) -> str:
    """The rectangles of the dark runs of ``chunk`` (modules ``column``… of a row)."""
    key = (column, chunk)
    ops = _CHUNK_OPS.get(key)
    if ops is None:
        ops = _CHUNK_OPS[key] = "".join(
            f"{column + m.start()} 0 {m.end() - m.start()} 1 re " for m in _RUN.finditer(chunk)
        )
    return ops


_RUN = re.compile("1+")


def rows_path(rows: tuple[str, ...]) -> str:
    """Rows of modules as PDF operators in module units (row 0 at the top): per row, one
    rectangle per run of dark modules within each 8 modules, filled (a run across 8 modules is two
    touching rectangles of the one path: the same area); the next row one unit lower. The
    operators of each 8 modules' pattern at each column are made once, so a code costs a lookup
    per 8 modules and a join."""
    count = len(rows)
    columns = range(0, count, _CHUNK)
    known = _CHUNK_OPS.get
    lines = [f"1 0 0 1 0 {count - 1} cm"]
    for row in rows:
        found = [known((c, row[c : c + _CHUNK])) for c in columns]
        parts = (
            found if None not in found else [_chunk_ops(c, row[c : c + _CHUNK]) for c in columns]
        )
        lines.append("".join(parts) + "f\n1 0 0 1 0 -1 cm")  # type: ignore[arg-type]  # an empty row fills nothing
    return "\n".join(lines)
