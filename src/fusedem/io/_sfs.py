"""A structural check of Bruker .bcf files (AidAim SFS containers) before parsing them.

RosettaSciIO's compiled BCF parser trusts the container: a truncated file (chunk
addresses past the end, short reads) makes it read and write out of bounds and
kill the process. :func:`check_sfs` reads only the container's header, file
table, chunk tables and compression-block headers (a few kB) and raises
:class:`ReadError` when any declared size or address does not fit the file.

Layout (little-endian; offsets in bytes): magic ``AAMVHFSS`` at 0; version (f32)
and chunk size (u32) at 0x124; tree chunk, number of tree items and number of
chunks (3 × u32) at 0x140. Chunk ``k`` starts at ``0x118 + k * chunk_size``: a
32-byte header (u32 at +0 is the next chunk of a chain) then ``chunk_size - 32``
bytes of payload. A tree item (0x200 bytes): i32 chunk of its pointer table,
u64 size, 3 × u64 times, u32 permissions, i32 parent, 176 bytes, bool is_dir,
3 bytes, 256-byte name, 32 bytes. A file's pointer table lists the u32 chunk
numbers of its data. Zlib-compressed files start with ``AACS``, u32 block size,
u32, u32 number of blocks; blocks follow from offset 0x80, each a 16-byte header
(u32 compressed size first) and the compressed bytes.
"""
from __future__ import annotations

import struct
from math import ceil
from pathlib import Path
from typing import BinaryIO

from ._dataset import ReadError

_BASE = 0x118
_HEAD = 32
_ITEM = 0x200
_MAX_CHUNK = 1 << 24


class _Bad(Exception):
    """A structural problem; becomes a ReadError naming the file."""


def _unpack(fmt: str, raw: bytes, what: str) -> tuple:
    if len(raw) < struct.calcsize(fmt):
        raise _Bad(f"the file ends inside {what}")
    return struct.unpack_from(fmt, raw)


class _Container:
    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        head = fh.read(0x14C)
        if len(head) < 0x14C or head[:8] != b"AAMVHFSS":
            raise _Bad("not a Bruker SFS container (bad header)")
        _, self.chunk = struct.unpack_from("<fI", head, 0x124)
        self.tree, self.n_items, self.n_chunks = struct.unpack_from("<III", head, 0x140)
        if not 2 * _HEAD < self.chunk <= _MAX_CHUNK:
            raise _Bad(f"implausible chunk size {self.chunk}")
        self.usable = self.chunk - _HEAD
        declared = _BASE + self.chunk * self.n_chunks
        if declared > size:
            raise _Bad(f"the file is truncated: its table declares {declared} bytes, "
                       f"the file has {size}")

    def chunk_at(self, k: int, what: str) -> int:
        """File offset of chunk ``k`` (checked against the declared chunk count)."""
        if not 0 <= k < self.n_chunks:
            raise _Bad(f"{what} points to chunk {k}, past the {self.n_chunks} chunks of the file")
        return _BASE + k * self.chunk

    def chain(self, first: int, n: int, what: str) -> bytes:
        """Payload of ``n`` chunks linked by their headers, starting at chunk ``first``."""
        out, k, seen = [], first, set()
        for _ in range(n):
            if k in seen:
                raise _Bad(f"{what} has a loop in its chunk chain")
            seen.add(k)
            self.fh.seek(self.chunk_at(k, what))
            raw = self.fh.read(self.chunk)
            if len(raw) < self.chunk:
                raise _Bad(f"the file ends inside {what}")
            out.append(raw[_HEAD:])
            k = struct.unpack_from("<I", raw)[0]
        return b"".join(out)


def _tree(c: _Container) -> bytes:
    per_chunk = c.usable // _ITEM
    if c.n_items < 1 or per_chunk < 1 or ceil(c.n_items / per_chunk) > c.n_chunks:
        raise _Bad(f"implausible number of items ({c.n_items}) in the file table")
    n = ceil(c.n_items * _ITEM / c.usable)
    if n == 1:  # one chunk: payload read straight through (the parser ignores the chunk header)
        c.fh.seek(c.chunk_at(c.tree, "the file table") + _HEAD)
        raw = c.fh.read(_ITEM * c.n_items)
        if len(raw) < _ITEM * c.n_items:
            raise _Bad("the file ends inside the file table")
        return raw
    return c.chain(c.tree, n, "the file table")


def _file_pointers(c: _Container, table: int, size: int, name: str) -> list[int]:
    n_data = ceil(size / c.usable)
    n_table = ceil(n_data / (c.usable // 4)) if n_data else 0
    if n_data > c.n_chunks:
        raise _Bad(f"{name!r} declares {size} bytes, more than the whole container holds")
    if n_table == 0:
        return []
    if n_table == 1:
        c.fh.seek(c.chunk_at(table, f"the chunk table of {name!r}") + _HEAD)
        raw = c.fh.read(4 * n_data)
    else:
        raw = c.chain(table, n_table, f"the chunk table of {name!r}")[: 4 * n_data]
    if len(raw) < 4 * n_data:
        raise _Bad(f"the file ends inside the chunk table of {name!r}")
    ptrs = [c.chunk_at(k, f"{name!r}") + _HEAD for k in struct.unpack(f"<{n_data}I", raw)]
    last = size - c.usable * (n_data - 1)
    if ptrs and ptrs[-1] + last > c.size:
        raise _Bad(f"the data of {name!r} runs past the end of the file")
    return ptrs


def _read(c: _Container, ptrs: list[int], offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of an inner file (uncompressed view of its chunks)."""
    out = []
    while length > 0:
        i, off = divmod(offset, c.usable)
        n = min(length, c.usable - off)
        c.fh.seek(ptrs[i] + off)
        out.append(c.fh.read(n))
        offset, length = offset + n, length - n
    return b"".join(out)


def _check_blocks(c: _Container, ptrs: list[int], size: int, name: str) -> None:
    magic, _, _, n_blocks = _unpack("<IIII", _read(c, ptrs, 0, 16), f"the header of {name!r}")
    if magic != 0x53434141:  # 'AACS'
        raise _Bad(f"{name!r} lacks the compression header the container announces")
    offset = 0x80
    for b in range(n_blocks):
        if offset + 16 > size:
            raise _Bad(f"{name!r} declares {n_blocks} compressed blocks, its data ends after {b}")
        (cpr,) = _unpack("<I", _read(c, ptrs, offset, 4), f"block {b} of {name!r}")
        offset += 16 + cpr
        if offset > size:
            raise _Bad(f"compressed block {b} of {name!r} runs past the end of its data")


def check_sfs(path: str | Path) -> None:
    """Raise :class:`ReadError` unless the SFS container at ``path`` is internally consistent.

    Checks every declared size and chunk address against the file size and the
    compression-block headers of each inner file. Reads only metadata (a few kB).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            c = _Container(fh, path.stat().st_size)
            raw = _tree(c)
            files = []
            for i in range(c.n_items):
                table, size, parent, is_dir, name = struct.unpack_from(
                    "<iQ24x4xi176x?3x256s", raw, i * _ITEM)
                name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
                if not -1 <= parent < c.n_items:
                    raise _Bad(f"item {name!r} has an invalid parent ({parent})")
                if not is_dir:
                    files.append((name, size, _file_pointers(c, table, size, name)))
            compressed = bool(files and files[0][2]) and _read(c, files[0][2], 0, 4) == b"AACS"
            if compressed:
                for name, size, ptrs in files:
                    _check_blocks(c, ptrs, size, name)
    except _Bad as exc:
        raise ReadError(f"{path}: damaged Bruker file: {exc}") from None
    except (OSError, struct.error, UnicodeError) as exc:
        raise ReadError(f"{path}: cannot read the Bruker container ({exc})") from None
