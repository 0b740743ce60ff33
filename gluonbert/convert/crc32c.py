"""CRC-32C (Castagnoli) in numpy, fast enough to verify a 440 MB TensorFlow checkpoint.

TensorFlow stores a masked CRC-32C of every tensor in its checkpoint index. A byte-at-a-time
Python loop would take minutes on BERT-base, so the data is cut into many equal lanes whose
CRCs are computed side by side with numpy, then chained: CRC is linear, so the register after
lane i+1 is (register after lane i, advanced over the lane's length in zeros) XOR (the lane's
own CRC from a zero register). The zero-advance is a fixed 32x32 bit matrix over GF(2),
applied through four 256-entry tables.
"""
import functools

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _byte_table():
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY if crc & 1 else 0)
        table[byte] = crc
    return table


_TABLE = _byte_table()
_TABLE_LIST = [int(v) for v in _TABLE]


def _update_python(crc, data):
    for byte in data:
        crc = _TABLE_LIST[(crc ^ byte) & 0xff] ^ (crc >> 8)
    return crc


def _apply(matrix, value):
    """A 32x32 GF(2) matrix (list of 32 column ints) times a 32-bit value."""
    result, bit = 0, 0
    while value:
        if value & 1:
            result ^= matrix[bit]
        value >>= 1
        bit += 1
    return result


def _zeros_operator(length):
    """Matrix advancing a CRC register over `length` zero bytes (square-and-multiply)."""
    one_byte = [_update_python(1 << bit, b'\0') for bit in range(32)]
    result = [1 << bit for bit in range(32)]  # identity
    power = one_byte
    while length:
        if length & 1:
            result = [_apply(power, column) for column in result]
        power = [_apply(power, column) for column in power]
        length >>= 1
    return result


@functools.lru_cache(maxsize=32)
def _advance_tables(length):
    """Four 256-entry tables advancing a register over `length` zero bytes, one per byte of the
    register: the advanced register is the XOR of four lookups."""
    matrix = _zeros_operator(length)
    return [[_apply(matrix, byte << (8 * k)) for byte in range(256)] for k in range(4)]


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """Standard CRC-32C of `data` (bytes-like), as TensorFlow and iSCSI compute it."""
    data = np.frombuffer(data, dtype=np.uint8)
    crc = 0xFFFFFFFF
    if len(data) >= 4096:
        # lanes of a power-of-two length (few distinct lengths, so cached tables), ~64k of them
        lane_length = 1 << max(6, (len(data) // 65536).bit_length() - 1)
        lanes = len(data) // lane_length
        block = data[:lanes * lane_length].reshape(lanes, lane_length).T.copy()
        registers = np.zeros(lanes, dtype=np.uint32)
        for row in block:  # one byte of every lane per step
            registers = _TABLE[(registers ^ row) & 0xff] ^ (registers >> np.uint32(8))
        tables = _advance_tables(lane_length)
        for register in registers.tolist():
            crc = (tables[0][crc & 0xff] ^ tables[1][(crc >> 8) & 0xff] ^
                   tables[2][(crc >> 16) & 0xff] ^ tables[3][crc >> 24]) ^ register
        data = data[lanes * lane_length:]
    return _update_python(crc, data.tobytes()) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TensorFlow's masked CRC-32C (rotated and offset, so CRCs of CRCs stay well-mixed)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xFFFFFFFF
