"""Linkis result sets as Python values: tables as typed pandas DataFrames, text, html, pictures.

Reading is paged (``filesystem/openFile``) and converted page by page, so a large table never
exists twice as Python strings. No HTTP here: the client hands in a function that fetches a page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from pandas.arrays import BooleanArray, IntegerArray

from linkis_magic import protocol
from linkis_magic.errors import ProtocolError

logger = logging.getLogger(__name__)

Kind: TypeAlias = Literal["table", "text", "html", "picture"]

# openFile's ``type`` (section 4.5): "3" (IO) is shown as text.
_KIND_BY_TYPE: dict[str, Kind] = {
    "1": "text",
    "2": "table",
    "3": "text",
    "4": "picture",
    "5": "html",
}

NULL = "NULL"

# Pages at least this long are converted in a worker thread.
_THREAD_ROWS = 1000

_INT = re.compile(r"^(int|integer|bigint|long|smallint|short|tinyint|byte)\b", re.I)
_FLOAT = re.compile(r"^(float|double|real)\b", re.I)
_BOOL = re.compile(r"^(boolean|bool)\b", re.I)
_DECIMAL = re.compile(r"^(decimal|bigdecimal|numeric)\b", re.I)
_DATE = re.compile(r"^date$", re.I)
_TIMESTAMP = re.compile(r"^(timestamp|datetime)", re.I)
_RESULT_INDEX = re.compile(r"_(\d+)(?:\.[^/]*)?$")


@dataclass
class ResultSet:
    """One result set of a job.

    Attributes:
        index: position among the job's result sets (``_0``, ``_1``, ...).
        kind: ``"table"``, ``"text"``, ``"html"`` or ``"picture"``.
        data: a DataFrame for tables, ``str`` for text and html, ``bytes`` for pictures.
        truncated: True when a row limit stopped reading before the end.
        path: the result file on the server.
        columns: ``(name, dataType)`` per column of a table, as Linkis typed them.
    """

    index: int
    kind: Kind
    data: pd.DataFrame | str | bytes
    truncated: bool = False
    path: str = ""
    columns: list[tuple[str, str]] = field(default_factory=list)

    def __repr__(self) -> str:
        shape = self.data.shape if isinstance(self.data, pd.DataFrame) else len(self.data)
        return (
            f"ResultSet(index={self.index}, kind={self.kind!r}, size={shape}, "
            f"truncated={self.truncated}, path={self.path!r})"
        )


# --------------------------------------------------------------------------- listing


def result_index(path: str) -> int:
    """The N of a ``.../_N.dolphin`` result file (a large number for names without one)."""
    match = _RESULT_INDEX.search(path.rstrip("/"))
    return int(match.group(1)) if match else 1 << 30


def result_paths(tree: object) -> list[str]:
    """The leaf paths of a ``getDirFileTrees`` answer (``data.dirFileTrees``), in ``_N`` order."""
    leaves: list[str] = []

    def walk(node: object) -> None:
        if not isinstance(node, Mapping):
            return
        children = node.get("children")
        if isinstance(children, list) and children:
            for child in children:
                walk(child)
        elif node.get("isLeaf") and isinstance(node.get("path"), str):
            leaves.append(node["path"])

    walk(tree)
    return sorted(leaves, key=lambda p: (result_index(p), p))


# --------------------------------------------------------------------------- columns


class _Column:
    """One table column, converted a page at a time into chunks of its final dtype."""

    def __init__(self, name: str, data_type: str) -> None:
        self.name = name
        self.data_type = data_type
        self.kind = _column_kind(data_type)
        self.chunks: list[Any] = []
        self.degraded = False

    def add(self, raw: np.ndarray) -> None:
        if not self.degraded:
            try:
                self.chunks.append(_convert(self.kind, raw))
                return
            except (ValueError, TypeError, OverflowError, InvalidOperation) as exc:
                self._degrade(raw, exc)
        self.chunks.append(_strings(raw))

    def _degrade(self, raw: np.ndarray, exc: Exception) -> None:
        """Keep every value as it came (earlier pages as converted, later ones as text)."""
        logger.warning(
            "column %r (%s) has a value that does not parse as %s (%s); keeping values as they are",
            self.name,
            self.data_type,
            self.kind,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        self.degraded = True
        self.chunks = [np.asarray(pd.array(c).astype(object), dtype=object) for c in self.chunks]

    def values(self) -> Any:
        if not self.chunks:
            empty = np.empty(0, dtype=object)
            return empty if self.degraded else _convert(self.kind, empty)
        if len(self.chunks) == 1:
            return self.chunks[0]
        first = self.chunks[0]
        if isinstance(first, pd.api.extensions.ExtensionArray):
            return first._concat_same_type(self.chunks)  # type: ignore[attr-defined]
        return np.concatenate(self.chunks)


def _column_kind(data_type: str) -> str:
    text = (data_type or "").strip()
    for kind, pattern in (
        ("int", _INT),
        ("float", _FLOAT),
        ("bool", _BOOL),
        ("decimal", _DECIMAL),
        ("date", _DATE),
        ("timestamp", _TIMESTAMP),
    ):
        if pattern.match(text):
            return kind
    return "string"


def _convert(kind: str, raw: np.ndarray) -> Any:
    nulls = raw == NULL
    if kind == "int":
        filled = np.where(nulls, "0", raw) if nulls.any() else raw
        return IntegerArray(filled.astype(np.int64), nulls)
    if kind == "float":
        filled = np.where(nulls, "nan", raw) if nulls.any() else raw
        return filled.astype(np.float64)
    if kind == "bool":
        truth = raw == "true"
        known = truth | (raw == "false") | nulls
        if not known.all():
            lowered = np.array([str(v).strip().lower() for v in raw], dtype=object)
            truth = lowered == "true"
            known = truth | (lowered == "false") | nulls
        if not known.all():
            raise ValueError(f"{raw[~known][0]!r} is not true or false")
        return BooleanArray(truth, nulls)
    if kind == "decimal":
        any_null = nulls.any()
        out = np.empty(len(raw), dtype=object)
        out[:] = list(map(Decimal, np.where(nulls, "0", raw) if any_null else raw))
        if any_null:
            out[nulls] = None
        return out
    if kind in ("date", "timestamp"):
        return _datetimes(kind, raw, nulls)
    return _strings(raw, nulls)


def _datetimes(kind: str, raw: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    """ISO dates and timestamps (Linkis writes ``2026-12-01 10:00:00.0``) as datetime64[us]."""
    filled = np.where(nulls, "NaT", raw) if nulls.any() else raw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy only warns about time zones it drops
            return filled.astype("datetime64[us]")
    except (ValueError, TypeError, Warning):
        values = np.where(nulls, None, raw)  # type: ignore[call-overload]
        fmt = "%Y-%m-%d" if kind == "date" else "ISO8601"
        parsed = pd.to_datetime(pd.Series(values, dtype=object), format=fmt)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.to_numpy().astype("datetime64[us]")


def _strings(raw: np.ndarray, nulls: np.ndarray | None = None) -> np.ndarray:
    """Text values, NULL as None; a copy, so the page's other cells can be freed."""
    nulls = raw == NULL if nulls is None else nulls
    return np.where(nulls, None, raw) if nulls.any() else raw.copy()  # type: ignore[call-overload]


# --------------------------------------------------------------------------- tables


class TableBuilder:
    """Collects the pages of one table result set and builds its DataFrame.

    ``columns`` are ``(name, dataType)`` pairs. Each page's rows (lists of strings, "NULL" for
    SQL NULL) are converted at once to their column's dtype.
    """

    def __init__(self, columns: Sequence[tuple[str, str]]) -> None:
        self.columns = [(str(n), str(t)) for n, t in columns]
        self._cols = [_Column(n, t) for n, t in self.columns]
        self.rows = 0

    def add_page(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        grid = _grid(rows, len(self._cols))
        for j, col in enumerate(self._cols):
            col.add(grid[:, j])
        self.rows += len(rows)

    def frame(self) -> pd.DataFrame:
        data = {}
        names = _unique_names([c.name for c in self._cols])
        for name, col in zip(names, self._cols, strict=True):
            data[name] = col.values()
        frame = pd.DataFrame(data, columns=names)
        original = [c.name for c in self._cols]
        if names != original:
            frame.columns = pd.Index(original)
        return frame


def _grid(rows: Sequence[Sequence[Any]], width: int) -> np.ndarray:
    """Rows as a 2-D object array of strings, short rows padded with NULL, long ones cut."""
    grid = np.empty((len(rows), width), dtype=object)
    try:
        lengths = set(map(len, rows))
    except TypeError:
        lengths = set()
    if lengths == {width} and not any(isinstance(r, str | bytes | dict) for r in rows[:1]):
        grid[:, :] = rows
        return grid
    logger.debug("ragged result rows; padding them to %d columns", width)
    for i, row in enumerate(rows):
        cells = [NULL if v is None else str(v) for v in list(row)[:width]]
        grid[i, :] = cells + [NULL] * (width - len(cells))
    return grid


def _unique_names(names: list[str]) -> list[str]:
    """Column keys for building the frame; duplicates get a suffix while building."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}\x00{count}")
    return out


def table_frame(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """One table's DataFrame from its ``(name, dataType)`` columns and string rows."""
    builder = TableBuilder(columns)
    builder.add_page(rows)
    return builder.frame()


def parse_columns(metadata: object) -> list[tuple[str, str]]:
    """openFile's table ``metadata`` as ``(columnName, dataType)`` pairs."""
    if not isinstance(metadata, list):
        raise ProtocolError("table result set without column metadata")
    out = []
    for i, col in enumerate(metadata):
        if isinstance(col, Mapping):
            out.append((str(col.get("columnName") or f"_c{i}"), str(col.get("dataType") or "")))
        else:
            out.append((str(col), "string"))
    return out


# --------------------------------------------------------------------------- reading


# fetch(path, page, page_size) -> the ``data`` of an openFile reply.
PageFetcher: TypeAlias = Callable[[str, int, int], Awaitable[Mapping[str, Any]]]


async def read_result_set(
    fetch: PageFetcher,
    index: int,
    path: str,
    *,
    limit: int | None = None,
    page_size: int = protocol.DEFAULT_PAGE_SIZE,
) -> ResultSet:
    """Read one result file page by page (1, 2, ...) until a short page or ``limit`` rows.

    With a limit smaller than a page, one page of ``limit + 1`` rows tells whether more exist.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    size = page_size
    if limit is not None and limit < page_size:
        size = limit + 1
    size = max(1, min(size, protocol.MAX_PAGE_SIZE))

    kind: Kind | None = None
    builder: TableBuilder | None = None
    lines: list[str] = []
    count = 0
    truncated = False
    page = 1
    # The next page is asked for before this one is converted, so the server prepares it
    # while this process converts (in a worker thread, leaving the loop free to read it).
    pending: asyncio.Future[Mapping[str, Any]] | None = asyncio.ensure_future(
        fetch(path, page, size)
    )
    try:
        while pending is not None:
            data = await pending
            pending = None
            rows = data.get("fileContent")
            rows = rows if isinstance(rows, list) else []
            if kind is None:
                kind = _KIND_BY_TYPE.get(str(data.get("type")), "text")
                if kind == "table":
                    builder = TableBuilder(parse_columns(data.get("metadata")))
            if limit is not None and count + len(rows) > limit:
                rows = rows[: limit - count]
                truncated = True
            elif len(rows) >= size:
                page += 1
                pending = asyncio.ensure_future(fetch(path, page, size))
            if builder is None:
                lines.extend(_text_row(r) for r in rows)
            elif len(rows) >= _THREAD_ROWS:
                await asyncio.to_thread(builder.add_page, rows)
            else:
                builder.add_page(rows)
            count += len(rows)
    finally:
        if pending is not None:
            pending.cancel()

    if builder is not None:
        return ResultSet(index, "table", builder.frame(), truncated, path, builder.columns)
    kind = kind or "text"
    if kind == "picture":
        return ResultSet(index, kind, _picture("".join(lines)), truncated, path)
    return ResultSet(index, kind, "\n".join(lines), truncated, path)


def _text_row(row: object) -> str:
    if isinstance(row, list):
        return "".join("" if v is None else str(v) for v in row)
    return "" if row is None else str(row)


def _picture(text: str) -> bytes:
    """A picture's content as bytes: Linkis stores it base64-encoded."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8")
