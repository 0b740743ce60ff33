"""Read TensorFlow's V2 checkpoint format (`prefix.index` + `prefix.data-*-of-*`) with numpy.

Why not TensorFlow's own reader: it would make a ~500 MB runtime dependency with its own numpy
pin (TF 2.15 wants numpy >= 1.23.5, MXNet 1.9 needs < 1.24) for reading a simple format. The
`.index` is a LevelDB-style SSTable mapping each variable name to a BundleEntryProto (dtype,
shape, shard, offset, size), the empty key to a BundleHeaderProto; the data files are the raw
tensor bytes, each verified against the CRC-32C the index records, as TensorFlow does. The
tests write checkpoints with real TensorFlow and read them with this module.
"""
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from .common import ConversionError
from .crc32c import masked_crc32c

_MAGIC = 0xdb4775248b80fb57
_FOOTER = 48
# TensorFlow DataType enum -> numpy dtype (little-endian; flipped for big-endian bundles)
_DTYPES = {1: 'f4', 2: 'f8', 3: 'i4', 4: 'u1', 5: 'i2', 6: 'i1', 9: 'i8', 10: '?', 14: 'bf16',
           17: 'u2', 19: 'f2', 22: 'u4', 23: 'u8'}
_DT_NAMES = {7: 'string', 8: 'complex64', 18: 'complex128', 20: 'resource', 21: 'variant'}


def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ConversionError('truncated varint in checkpoint index')
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7f) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(data):
    """Protocol-buffer wire format -> list of (field number, value); enough for the bundle."""
    pos, fields = 0, []
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = struct.unpack_from('<Q', data, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from('<I', data, pos)[0], pos + 4
        else:
            raise ConversionError(f'unsupported protobuf wire type {wire} in checkpoint index')
        fields.append((number, value))
    return fields


def _signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_entry(name, data):
    entry = dict(dtype=None, shape=[], shard_id=0, offset=0, size=0, sliced=False, crc32c=None)
    for number, value in _proto_fields(data):
        if number == 1:
            entry['dtype'] = value
        elif number == 2:
            for dim_number, dim in _proto_fields(value):
                if dim_number == 2:
                    size = dict(_proto_fields(dim)).get(1, 0)
                    entry['shape'].append(_signed(size))
                elif dim_number == 3 and dim:
                    raise ConversionError(f'{name} has an unknown rank')
        elif number in (3, 4, 5, 6):
            entry[{3: 'shard_id', 4: 'offset', 5: 'size', 6: 'crc32c'}[number]] = value
        elif number == 7:
            entry['sliced'] = True
    return entry


def _read_block(blob, offset, size, path):
    end = offset + size + 5
    if end > len(blob):
        raise ConversionError(f'{path} is truncated: a block ends at byte {end} of {len(blob)}')
    if blob[offset + size] != 0:
        raise ConversionError(f'{path} uses a compressed index block (type '
                              f'{blob[offset + size]}), which gluonbert '
                              'cannot read')
    return blob[offset:offset + size]


def _block_entries(block, path):
    if len(block) < 4:
        raise ConversionError(f'{path} has a corrupt index block')
    (restarts,) = struct.unpack_from('<I', block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise ConversionError(f'{path} has a corrupt index block')
    pos, key = 0, b''
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def read_index(index_path: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The `.index` SSTable -> (header fields dict, {name: entry dict})."""
    with open(index_path, 'rb') as f:
        blob = f.read()
    if len(blob) < _FOOTER or struct.unpack_from('<Q', blob, len(blob) - 8)[0] != _MAGIC:
        raise ConversionError(f'{index_path} is truncated or not a TensorFlow checkpoint index '
                              f'(no table '
                              'footer)')
    footer = blob[len(blob) - _FOOTER:]
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)  # metaindex handle: unused
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    header, entries = {}, {}
    for _, handle in _block_entries(_read_block(blob, index_offset, index_size, index_path),
                                    index_path):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        for key, value in _block_entries(_read_block(blob, offset, size, index_path), index_path):
            if key == b'':
                header = dict(_proto_fields(value))
            else:
                name = key.decode('utf-8')
                entries[name] = _parse_entry(name, value)
    return header, entries


def read_tf_variables(prefix: str, skip: Callable[[str], bool] = lambda name: False
                      ) -> dict[str, np.ndarray]:
    """All variables of a TF V2 checkpoint -> {name: numpy array} (bfloat16 becomes float32).

    prefix: the path without `.index` (e.g. `.../bert_model.ckpt`). `skip(name)` -> True leaves
    a variable out (optimizer slots, counters). Raises ConversionError for truncated or
    unsupported checkpoints.
    """
    index_path = prefix + '.index'
    if not os.path.isfile(index_path):
        raise ConversionError(f'TensorFlow checkpoint index not found: {index_path}')
    header, entries = read_index(index_path)
    shards = header.get(1, 1)
    byte_order = '>' if header.get(2, 0) == 1 else '<'
    arrays, handles = {}, {}
    try:
        for name, entry in sorted(entries.items()):
            if skip(name):
                continue
            arrays[name] = _read_tensor(prefix, name, entry, shards, byte_order, handles)
    finally:
        for handle in handles.values():
            handle.close()
    return arrays


def _read_tensor(prefix, name, entry, shards, byte_order, handles):
    if entry['sliced']:
        raise ConversionError(f'{name} is a partitioned variable, which gluonbert cannot read')
    if entry['dtype'] not in _DTYPES:
        raise ConversionError('variable {} has TensorFlow dtype {}, which gluonbert cannot read'
                              .format(name, _DT_NAMES.get(entry['dtype'], entry['dtype'])))
    shard = entry['shard_id']
    path = f'{prefix}.data-{shard:05d}-of-{shards:05d}'
    if shard not in handles:
        if not os.path.isfile(path):
            raise ConversionError(f'checkpoint data file not found: {path}')
        handles[shard] = open(path, 'rb')
    code = _DTYPES[entry['dtype']]
    dtype = np.dtype(byte_order + ('u2' if code == 'bf16' else code))
    shape = tuple(entry['shape'])
    want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if entry['size'] != want:
        raise ConversionError('variable {} of shape {} needs {} bytes but the index says {}'
                              .format(name, shape, want, entry['size']))
    handles[shard].seek(entry['offset'])
    raw = handles[shard].read(want)
    if len(raw) != want:
        raise ConversionError('{} is truncated: variable {} needs bytes {}..{} but the file has '
                              '{}'.format(path, name, entry['offset'], entry['offset'] + want,
                                          os.path.getsize(path)))
    if entry['crc32c'] is not None and masked_crc32c(raw) != entry['crc32c']:
        raise ConversionError(f'{path} is corrupt: the bytes of variable {name} fail the checksum '
                              'recorded in the index (crc32c)')
    values = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if code == 'bf16':
        values = (values.astype('<u4') << 16).view('<f4')
    return values.astype(values.dtype.newbyteorder('='))
