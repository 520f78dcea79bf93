"""A minimal writer of Bruker SFS containers (the .bcf wrapper), for tests of the container check.

Layout as described in :mod:`fusedem.io._sfs`: chunk 0 holds the header, chunk 1
the file table (one item), chunk 2 the item's chunk table, the data follows.
"""
from __future__ import annotations

import struct
from math import ceil

CHUNK = 4096
USABLE = CHUNK - 32


def sfs_bytes(payload: bytes, name: str = "EDSDatabase_HeaderData") -> bytes:
    """An SFS container holding one uncompressed inner file with ``payload``."""
    n_data = max(1, ceil(len(payload) / USABLE))
    n_chunks = 3 + n_data
    out = bytearray(0x118 + CHUNK * n_chunks)
    out[:8] = b"AAMVHFSS"
    struct.pack_into("<fI", out, 0x124, 2.6, CHUNK)
    struct.pack_into("<III", out, 0x140, 1, 1, n_chunks)
    item = bytearray(0x200)
    struct.pack_into("<iQ", item, 0, 2, len(payload))
    struct.pack_into("<i", item, 40, -1)  # parent: the root
    item[224:224 + len(name)] = name.encode()
    tree_at = 0x118 + CHUNK + 32
    out[tree_at:tree_at + 0x200] = item
    table_at = 0x118 + 2 * CHUNK + 32
    struct.pack_into(f"<{n_data}I", out, table_at, *range(3, 3 + n_data))
    for i in range(n_data):
        at = 0x118 + (3 + i) * CHUNK + 32
        piece = payload[i * USABLE:(i + 1) * USABLE]
        out[at:at + len(piece)] = piece
    return bytes(out)
