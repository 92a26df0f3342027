"""Result set files of the embedded gateway: writing them in engines, paged reading in the gateway.

A result set ``_N.dolphin`` is a JSON header line (type and metadata) followed by one JSON array
of strings per row; ``_N.dolphin.idx`` holds each row's byte offset (little-endian uint64), so a
page is read with two seeks whatever the size of the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import json.encoder
import math
import os
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

TEXT = "1"
TABLE = "2"
PICTURE = "4"
HTML = "5"

SUFFIX = ".dolphin"
INDEX_SUFFIX = ".idx"
NULL = "NULL"

_OFFSET = struct.Struct("<Q")


def render_value(value: object) -> str:
    """A cell as Linkis renders it: None and NaN as "NULL", booleans lower-case."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is int:
        return str(value)
    if value is None:
        return NULL
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return NULL if math.isnan(value) else repr(value)
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    text = str(value)
    return NULL if text in ("NaT", "<NA>", "nan") else text


# A JSON string literal (quotes and escapes) for a str; C-implemented in CPython.
_QUOTE: Callable[[str], str] = json.encoder.encode_basestring
_FLUSH_ROWS = 2000


class ResultSetWriter:
    """Writes one result set file and its row index.

    Args:
        path: the ``_N.dolphin`` file to create.
        kind: TEXT, TABLE, PICTURE or HTML.
        metadata: for tables, ``[{"columnName", "dataType", "comment"}]``.
    """

    def __init__(self, path: Path, kind: str, metadata: object = None) -> None:
        self.path = path
        self.kind = kind
        self.rows = 0
        self._offsets = array("Q")
        self._buffer: list[bytes] = []
        self._out: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        header = {"type": kind, "metadata": metadata}
        self._out.write(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n")
        self._pos = self._out.tell()

    def write_row(self, cells: Sequence[str]) -> None:
        self.write_rows((cells,), self.rows + 1)

    def write_rows(self, rows: Iterable[Sequence[object]], limit: int) -> bool:
        """Write rows (cells rendered as Linkis strings) until ``limit`` rows are in the file.

        Returns whether rows were left out because of the limit.
        """
        quote = _QUOTE
        render = render_value
        offsets = self._offsets
        buffer = self._buffer
        pos = self._pos
        count = self.rows
        try:
            for row in rows:
                if count >= limit:
                    return True
                cells = ",".join([quote(v) if type(v) is str else quote(render(v)) for v in row])
                data = ("[" + cells + "]\n").encode()
                offsets.append(pos)
                buffer.append(data)
                pos += len(data)
                count += 1
                if len(buffer) >= _FLUSH_ROWS:
                    self._out.write(b"".join(buffer))
                    buffer.clear()
            return False
        finally:
            self._pos = pos
            self.rows = count

    def close(self) -> None:
        self._out.write(b"".join(self._buffer))
        self._buffer.clear()
        self._out.close()
        if sys.byteorder == "little" and self._offsets.itemsize == 8:
            offsets = self._offsets.tobytes()
        else:
            offsets = b"".join(_OFFSET.pack(o) for o in self._offsets)
        tmp = self.path.with_name(self.path.name + INDEX_SUFFIX + ".tmp")
        tmp.write_bytes(offsets)
        os.replace(tmp, self.path.with_name(self.path.name + INDEX_SUFFIX))

    def __enter__(self) -> ResultSetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ResultDir:
    """The result sets of one job, numbered ``_0.dolphin``, ``_1.dolphin``... in write order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def new(self, kind: str, metadata: object = None) -> ResultSetWriter:
        self.path.mkdir(parents=True, exist_ok=True)
        writer = ResultSetWriter(self.path / f"_{self.count}{SUFFIX}", kind, metadata)
        self.count += 1
        return writer

    def write_text(self, text: str) -> None:
        with self.new(TEXT) as writer:
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            for line in lines:
                writer.write_row([line])

    def write_html(self, html: str) -> None:
        with self.new(HTML) as writer:
            writer.write_row([html])

    def write_picture(self, png: bytes) -> None:
        with self.new(PICTURE) as writer:
            writer.write_row([base64.b64encode(png).decode("ascii")])

    def write_table(
        self, metadata: list[dict[str, str]], rows: Iterable[Sequence[object]], limit: int
    ) -> tuple[int, bool]:
        """Writes at most ``limit`` rows; returns (rows written, whether rows were left out)."""
        with self.new(TABLE, metadata) as writer:
            truncated = writer.write_rows(rows, limit)
            return writer.rows, truncated


@dataclass(frozen=True)
class Page:
    kind: str
    metadata: Any
    rows: list[list[str]]


def result_files(directory: Path) -> list[Path]:
    """The result set files in ``directory`` in their numeric order."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    return sorted(files, key=_index_of)


def _index_of(path: Path) -> tuple[int, str]:
    stem = path.name[: -len(SUFFIX)].lstrip("_")
    return (int(stem), path.name) if stem.isdigit() else (1 << 30, path.name)


def read_page(path: Path, page: int, page_size: int) -> Page:
    """Rows ``(page-1)*page_size`` .. of one result set, reading only that page."""
    raw = read_raw_page(path, page, page_size)
    return Page(raw.kind, raw.metadata, raw.rows())


@dataclass(frozen=True)
class RawPage:
    """A page as stored: ``rows_json`` is the JSON array of its ``count`` rows, unparsed."""

    kind: str
    metadata: Any
    rows_json: bytes
    count: int

    def rows(self) -> list[list[str]]:
        """The rows parsed: one parse per page, not per row (the writer quotes every cell, and
        checking each cell would cost as much as the parse)."""
        return [row if type(row) is list else [str(row)] for row in json.loads(self.rows_json)]


def read_raw_page(path: Path, page: int, page_size: int) -> RawPage:
    """A page whose rows can go to a client as they are stored, without a parse and a dump."""
    start = max(page - 1, 0) * page_size
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        lines = _lines_from(f, path, start, page_size)
    kind = str(header.get("type", TEXT))
    return RawPage(kind, header.get("metadata"), b"[" + b",".join(lines) + b"]", len(lines))


def _lines_from(f: BinaryIO, path: Path, start: int, count: int) -> list[bytes]:
    index = path.with_name(path.name + INDEX_SUFFIX)
    try:
        with open(index, "rb") as ix:
            ix.seek(start * 8)
            raw = ix.read(8)
        if len(raw) < 8:
            return []
        f.seek(_OFFSET.unpack(raw)[0])
    except FileNotFoundError:
        for _ in range(start):
            if not f.readline():
                return []
    lines = []
    for _ in range(count):
        line = f.readline()
        if not line:
            break
        lines.append(line.rstrip(b"\n"))
    return lines


def row_count(path: Path) -> int:
    index = path.with_name(path.name + INDEX_SUFFIX)
    try:
        return index.stat().st_size // 8
    except FileNotFoundError:
        return 0
