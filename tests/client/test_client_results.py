"""Result sets -> pandas: dtypes from Linkis's dataType, NULLs, paging and row limits."""

from __future__ import annotations

import base64
import logging
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from linkis_magic.results import (
    ResultSet,
    TableBuilder,
    read_result_set,
    result_paths,
    table_frame,
)

ALL_TYPES = [
    ("i", "int"),
    ("big", "bigint"),
    ("small", "smallint"),
    ("tiny", "tinyint"),
    ("l", "long"),
    ("f", "float"),
    ("d", "double"),
    ("ok", "boolean"),
    ("dec", "decimal(10,2)"),
    ("day", "date"),
    ("ts", "timestamp"),
    ("s", "string"),
    ("arr", "array<int>"),
]


def test_table_dtypes_follow_linkis_data_types() -> None:
    row = [
        "1",
        "9223372036854775807",
        "-3",
        "7",
        "42",
        "1.5",
        "-2.25",
        "true",
        "12.30",
        "2026-12-01",
        "2026-12-01 10:11:12.5",
        "héllo",
        "[1, 2]",
    ]
    df = table_frame(ALL_TYPES, [row])

    assert list(df.columns) == [n for n, _ in ALL_TYPES]
    for name in ("i", "big", "small", "tiny", "l"):
        assert df[name].dtype == "Int64", name
    assert df["f"].dtype == np.float64 and df["d"].dtype == np.float64
    assert df["ok"].dtype == "boolean"
    assert df["dec"].dtype == object and df["dec"][0] == Decimal("12.30")
    assert str(df["dec"][0]) == "12.30"
    assert df["day"].dtype.kind == "M" and df["day"][0] == pd.Timestamp("2026-12-01")
    assert df["ts"][0] == pd.Timestamp("2026-12-01 10:11:12.500")
    assert df["s"][0] == "héllo" and df["arr"][0] == "[1, 2]"
    assert df["big"][0] == 9223372036854775807


def test_null_becomes_missing_in_every_dtype() -> None:
    df = table_frame(
        ALL_TYPES,
        [
            ["NULL"] * len(ALL_TYPES),
            ["1"] * 5 + ["1"] * 2 + ["false"] + ["1"] + ["2026-01-02"] * 2 + ["x", "y"],
        ],
    )

    assert df.iloc[0].isna().all()
    assert df["i"].dtype == "Int64" and df["i"][1] == 1
    assert df["ok"].dtype == "boolean" and not df["ok"][1]
    assert df["dec"][0] is None and df["dec"][1] == Decimal(1)


def test_bad_value_keeps_every_value_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    builder = TableBuilder([("n", "int")])
    builder.add_page([["1"], ["2"]])
    with caplog.at_level(logging.WARNING, logger="linkis_magic.results"):
        builder.add_page([["three"], ["NULL"]])
    df = builder.frame()

    assert df["n"].tolist()[:3] == [1, 2, "three"]
    assert pd.isna(df["n"][3])
    assert "does not parse as int" in caplog.text


def test_float_specials_and_boolean_case() -> None:
    df = table_frame([("f", "double"), ("b", "boolean")], [["NaN", "TRUE"], ["Infinity", "False"]])

    assert np.isnan(df["f"][0]) and df["f"][1] == np.inf
    assert df["b"].tolist() == [True, False]


def test_ragged_rows_are_padded_with_missing_values() -> None:
    df = table_frame([("a", "int"), ("b", "string")], [["1"], ["2", "x", "extra"]])

    assert df["a"].tolist() == [1, 2]
    assert pd.isna(df["b"][0]) and df["b"][1] == "x"


def test_duplicate_column_names_are_kept() -> None:
    df = table_frame([("count(1)", "bigint"), ("count(1)", "bigint")], [["1", "2"]])

    assert list(df.columns) == ["count(1)", "count(1)"]
    assert df.iloc[0].tolist() == [1, 2]


def test_empty_table_keeps_columns_and_dtypes() -> None:
    df = table_frame([("a", "int"), ("d", "date")], [])

    assert df.shape == (0, 2)
    assert df["a"].dtype == "Int64" and df["d"].dtype.kind == "M"


def test_pages_concatenate_in_order() -> None:
    builder = TableBuilder([("i", "int"), ("f", "double"), ("t", "timestamp")])
    for start in range(0, 30, 10):
        builder.add_page(
            [[str(i), f"{i}.5", f"2026-01-01 00:00:{i:02d}"] for i in range(start, start + 10)]
        )
    df = builder.frame()

    assert df["i"].tolist() == list(range(30))
    assert df["f"][29] == 29.5
    assert df["t"][29] == pd.Timestamp("2026-01-01 00:00:29")


def test_result_paths_are_sorted_numerically() -> None:
    tree = {
        "path": "/r/1",
        "isLeaf": False,
        "children": [
            {"name": n, "path": f"/r/1/{n}", "isLeaf": True, "children": None}
            for n in ("_10.dolphin", "_2.dolphin", "_0.dolphin", "_1.dolphin")
        ],
    }

    assert result_paths(tree) == [f"/r/1/_{i}.dolphin" for i in (0, 1, 2, 10)]
    assert result_paths(None) == []
    assert result_paths({"path": "/r", "isLeaf": False, "children": []}) == []


class PagedFile:
    """A result file served a page at a time, recording which pages were asked for."""

    def __init__(self, kind: str, rows: list[list[str]], metadata: object = None) -> None:
        self.kind = kind
        self.rows = rows
        self.metadata = metadata
        self.calls: list[tuple[int, int]] = []

    async def __call__(self, path: str, page: int, size: int) -> dict[str, object]:
        self.calls.append((page, size))
        chunk = self.rows[(page - 1) * size : page * size]
        return {"type": self.kind, "metadata": self.metadata, "fileContent": chunk}


TABLE_META = [{"columnName": "n", "comment": "NULL", "dataType": "int"}]


async def test_read_pages_until_a_short_page() -> None:
    fetch = PagedFile("2", [[str(i)] for i in range(25)], TABLE_META)

    rs = await read_result_set(fetch, 0, "/r/_0.dolphin", page_size=10)

    assert fetch.calls == [(1, 10), (2, 10), (3, 10)]
    assert rs.kind == "table" and not rs.truncated and rs.columns == [("n", "int")]
    assert isinstance(rs.data, pd.DataFrame) and rs.data["n"].tolist() == list(range(25))


async def test_exact_multiple_of_page_size_reads_one_empty_page() -> None:
    fetch = PagedFile("2", [[str(i)] for i in range(20)], TABLE_META)

    rs = await read_result_set(fetch, 0, "/r/_0.dolphin", page_size=10)

    assert [c[0] for c in fetch.calls] == [1, 2, 3]
    assert len(rs.data) == 20 and not rs.truncated


async def test_limit_below_a_page_reads_one_page_and_marks_truncated() -> None:
    fetch = PagedFile("2", [[str(i)] for i in range(100)], TABLE_META)

    rs = await read_result_set(fetch, 0, "/r/_0.dolphin", limit=5, page_size=10)

    assert fetch.calls == [(1, 6)]
    assert rs.truncated and rs.data["n"].tolist() == [0, 1, 2, 3, 4]


async def test_limit_equal_to_rows_is_not_truncated() -> None:
    fetch = PagedFile("2", [[str(i)] for i in range(5)], TABLE_META)

    rs = await read_result_set(fetch, 0, "/r/_0.dolphin", limit=5, page_size=10)

    assert not rs.truncated and len(rs.data) == 5


async def test_limit_across_pages_stops_early() -> None:
    fetch = PagedFile("2", [[str(i)] for i in range(100)], TABLE_META)

    rs = await read_result_set(fetch, 0, "/r/_0.dolphin", limit=25, page_size=10)

    assert fetch.calls == [(1, 10), (2, 10), (3, 10)]
    assert rs.truncated and rs.data["n"].tolist() == list(range(25))


async def test_text_html_and_picture_result_sets() -> None:
    text = await read_result_set(PagedFile("1", [["line 1"], ["line 2"]]), 0, "/r/_0")
    html = await read_result_set(PagedFile("5", [["<b>hi</b>"]]), 1, "/r/_1")
    png = b"\x89PNG\r\n\x1a\nrest"
    picture = await read_result_set(PagedFile("4", [[base64.b64encode(png).decode()]]), 2, "/r/_2")

    assert (text.kind, text.data) == ("text", "line 1\nline 2")
    assert (html.kind, html.data) == ("html", "<b>hi</b>")
    assert (picture.kind, picture.data) == ("picture", png)
    assert "kind='picture'" in repr(picture)


async def test_negative_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="limit"):
        await read_result_set(PagedFile("1", []), 0, "/r/_0", limit=-1)


def test_result_set_repr_is_short() -> None:
    rs = ResultSet(0, "table", pd.DataFrame({"a": range(1000)}), path="/r/_0.dolphin")

    assert repr(rs) == (
        "ResultSet(index=0, kind='table', size=(1000, 1), truncated=False, path='/r/_0.dolphin')"
    )


def test_timestamps_with_offsets_become_utc_and_odd_dates_stay_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    df = table_frame([("t", "timestamp")], [["2026-12-01 10:00:00+02:00"], ["NULL"]])
    with caplog.at_level(logging.WARNING, logger="linkis_magic.results"):
        odd = table_frame([("d", "date")], [["2026/12/01"]])

    assert df["t"][0] == pd.Timestamp("2026-12-01 08:00:00") and pd.isna(df["t"][1])
    assert odd["d"].tolist() == ["2026/12/01"]
    assert "does not parse as date" in caplog.text and "\n" not in caplog.text.strip()


def test_string_columns_do_not_keep_whole_pages_alive() -> None:
    builder = TableBuilder([("n", "int"), ("s", "string"), ("big", "int")])
    builder.add_page([["1", "x", "2"]])

    chunk = builder._cols[1].chunks[0]
    assert chunk.base is None or chunk.base.shape == chunk.shape
