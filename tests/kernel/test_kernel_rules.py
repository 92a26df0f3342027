"""The kernel's pure rules: where a cell goes, SQL and shell completeness, SQL completion."""

from __future__ import annotations

import pytest

from linkis_magic.kernel import (
    is_linkis_cell,
    language_info_for,
    magic_cell_language,
    route_cell,
    shell_is_complete,
    sql_completions,
    sql_is_complete,
)


def test_plain_cell_becomes_a_linkis_cell_with_the_kernels_engine_and_run_type() -> None:
    assert route_cell("select 1", "spark", "sql") == "%%linkis spark sql\nselect 1"
    assert route_cell("\nprint(1)\n", "python", "python") == "%%linkis python python\n\nprint(1)\n"


@pytest.mark.parametrize(
    "cell",
    [
        "%%linkis shell\necho hi",
        "%linkis status",
        "  %linkis jobs",
        "%%timeit\n1 + 1",
        "\n%config LinkisMagic.view = 'text'",
        "%%python --bg\nprint(1)",
    ],
)
def test_cells_starting_with_a_magic_run_as_written(cell: str) -> None:
    assert route_cell(cell, "spark", "sql") == cell
    assert not is_linkis_cell(cell)


@pytest.mark.parametrize("magic", ["%%local", "%%python", "  %%local  "])
def test_local_cells_run_the_rest_in_the_kernels_python(magic: str) -> None:
    routed = route_cell(f"\n{magic}\nx = 1\nprint(x)\n", "spark", "sql")

    assert routed == f"\n# {magic.strip()}\nx = 1\nprint(x)\n"


def test_local_with_arguments_is_left_to_the_magic_that_rejects_it() -> None:
    assert route_cell("%%local -o x\nx = 1", "spark", "sql") == "%%local -o x\nx = 1"


def test_blank_cells_are_not_sent() -> None:
    assert route_cell("  \n\n", "spark", "sql") == "  \n\n"
    assert not is_linkis_cell("")


@pytest.mark.parametrize(
    "code",
    [
        "select 1;",
        "select 1\n",
        "select 1\n  \n",
        "select\n  1;\n",
        "-- only a comment",
        "/* a block */",
        "",
        "select ')' from t;",
        "select 'it''s' as s;",
        "select `a;b` from t  -- trailing comment;\n",
        "select (1 + (2));",
    ],
)
def test_sql_complete(code: str) -> None:
    assert sql_is_complete(code) == "complete"


@pytest.mark.parametrize(
    "code",
    [
        "select 1",
        "select (1,\n",
        "select 'abc",
        "select 1 /* open comment",
        'select "x',
        "select `x",
        "select 1 -- the end is not here;",
        "select 'a\\'b",
    ],
)
def test_sql_incomplete(code: str) -> None:
    assert sql_is_complete(code) == "incomplete"


@pytest.mark.parametrize("code", ["select 1);", "select (1))", ")"])
def test_sql_invalid(code: str) -> None:
    assert sql_is_complete(code) == "invalid"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("echo hi", "complete"),
        ("echo 'a b'", "complete"),
        ('echo "it\'s"', "complete"),
        ("echo 'open", "incomplete"),
        ('echo "open', "incomplete"),
        ("ls \\\n", "incomplete"),
        ("echo \\'", "complete"),
    ],
)
def test_shell_completeness(code: str, status: str) -> None:
    assert shell_is_complete(code) == status


def test_sql_completion_follows_the_typed_case_and_says_where_the_word_starts() -> None:
    assert sql_completions("sel", 3) == (["select"], 0)
    assert sql_completions("SELECT 1 FR", 11) == (["FROM", "FROM_UNIXTIME"], 9)
    assert sorted(sql_completions("select x from t whe", 19)[0]) == ["when", "where"]
    assert sql_completions("select 1 ", 9) == ([], 9)
    assert sql_completions("select zzz", 10) == ([], 7)


def test_language_info_gives_sql_python_and_bash_cells_their_highlighting() -> None:
    sql = language_info_for("sql")
    assert (sql["name"], sql["mimetype"], sql["file_extension"], sql["codemirror_mode"]) == (
        "sql",
        "text/x-sql",
        ".sql",
        "sql",
    )
    assert language_info_for("py")["name"] == "python"
    assert language_info_for("shell")["codemirror_mode"] == "shell"
    assert language_info_for("r")["mimetype"] == "text/plain"


@pytest.mark.parametrize(
    ("code", "cursor", "language"),
    [
        ("%%linkis spark sql\nsel", 22, "sql"),
        ("%%linkis spark\nsel", 18, "sql"),
        ("%%linkis\nsel", 12, "sql"),
        ("%%linkis python -o df\npri", 25, "python"),
        ("%%linkis shell shell\nec", 23, "bash"),
        ("%%linkis spark sql\nsel", 5, "python"),
        ("%%local\npri", 11, "python"),
        ("%linkis sta", 11, "python"),
    ],
)
def test_the_language_below_a_linkis_line_is_its_run_types(
    code: str, cursor: int, language: str
) -> None:
    assert magic_cell_language(code, cursor) == language


def test_a_linkis_line_without_engine_means_the_kernels_engine() -> None:
    assert magic_cell_language("%%linkis -o df\npri", 18, "python", "python") == "python"
    assert magic_cell_language("%%linkis\nec", 11, "shell", "shell") == "bash"
    assert magic_cell_language("%%linkis spark\nsel", 18, "python", "python") == "sql"
