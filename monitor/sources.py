"""Following log files the way a log shipper does, in bounded chunks.

A file is identified by device and inode plus a fingerprint of its first bytes, so
renamed (rotated) files keep their place, a new file at an old path starts from zero,
a truncated file restarts, and a reused inode is not mistaken for the old file. Reading
stops at the last complete line: a partial last line is consumed only once its newline
arrives. Memory is bounded by the chunk size and the line-length limit, not by the file.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

logger = logging.getLogger(__name__)

HEAD_BYTES = 256
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class FileState:
    """A file found by a source's globs."""

    path: str
    key: str  # "device:inode"
    size: int
    mtime: float


def discover(patterns: Sequence[str]) -> list[FileState]:
    """Files matching any glob, oldest first; files that vanish meanwhile are skipped."""
    seen: dict[str, FileState] = {}
    for pattern in patterns:
        for path in glob.glob(os.path.expanduser(pattern), recursive=True):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            key = f"{st.st_dev}:{st.st_ino}"
            seen.setdefault(key, FileState(path, key, st.st_size, st.st_mtime))
    return sorted(seen.values(), key=lambda f: (f.mtime, f.path))


def head_fingerprint(fd: int, length: int) -> str:
    """``"<length>:<sha1>"`` of the first ``length`` bytes (at most HEAD_BYTES).

    Uses ``pread`` so the file position of a reader is not moved.
    """
    data = os.pread(fd, min(length, HEAD_BYTES), 0)
    return f"{len(data)}:{hashlib.sha1(data).hexdigest()}"


def same_head(fd: int, stored: str | None) -> bool:
    """Whether the file still starts with the bytes a checkpoint saw."""
    if not stored:
        return True
    length = int(stored.split(":", 1)[0])
    return head_fingerprint(fd, length) == stored


class Line(NamedTuple):
    """One complete line (without its line end), or an over-long one (``data`` truncated)."""

    number: int  # 1-based line number in the file
    offset: int  # byte offset of the line's first byte
    data: bytes
    too_long: bool = False


@dataclass(frozen=True)
class LineChunk:
    """Lines for one unit of work; the list is the consumer's (it may clear it when done)."""

    lines: list[Line]
    end_offset: int  # offset just after the chunk's last newline
    end_line: int  # number of lines consumed once this chunk is committed


def read_lines(
    fh: BinaryIO,
    *,
    offset: int,
    line: int,
    max_line_bytes: int,
    chunk_lines: int,
    block_bytes: int = 1 << 20,
) -> Iterator[LineChunk]:
    """Complete lines from ``offset`` on, in chunks of at most ``chunk_lines`` lines.

    Lines longer than ``max_line_bytes`` are yielded with ``too_long=True`` and their
    first 200 bytes only, without ever holding the whole line in memory. A last line
    without its newline is not yielded: the next call resumes from its first byte.
    """
    fh.seek(offset)
    data = b""  # unconsumed bytes, starting at absolute offset `pos`
    pos = offset
    number = line
    consumed = offset  # offset just after the last complete line
    skipping = False  # inside an over-long line: discard until its newline
    skip_offset = 0
    excerpt = b""
    lines: list[Line] = []
    while True:
        block = fh.read(block_bytes)
        if not block:
            break
        if skipping:
            nl = block.find(b"\n")
            if nl < 0:
                pos += len(block)
                continue
            number += 1
            lines.append(Line(number, skip_offset, excerpt, too_long=True))
            skipping = False
            pos += nl + 1
            consumed = pos
            data = block[nl + 1 :]
            if len(lines) >= chunk_lines:
                yield LineChunk(lines, consumed, number)
                lines = []
        else:
            data = data + block if data else block
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            number += 1
            at = pos + start
            if nl - start > max_line_bytes:
                lines.append(Line(number, at, data[start : min(nl, start + 200)], too_long=True))
            else:
                raw = data[start:nl]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if at == 0 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                lines.append(Line(number, at, raw))
            start = nl + 1
            consumed = pos + start
            if len(lines) >= chunk_lines:
                yield LineChunk(lines, consumed, number)
                lines = []
        data = data[start:]
        pos += start
        if len(data) > max_line_bytes:
            skipping, skip_offset, excerpt = True, pos, data[:200]
            pos += len(data)
            data = b""
    if lines:
        yield LineChunk(lines, consumed, number)
