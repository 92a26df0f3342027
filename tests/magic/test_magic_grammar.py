"""The %%linkis grammar and the rendering of notebook variables, without a gateway."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

from linkis_magic.magic import CellOptions, parse_cell_line, render_variable, resolve_variables


def test_empty_line_gives_defaults() -> None:
    assert parse_cell_line("") == CellOptions()


def test_every_option_is_read() -> None:
    options = parse_cell_line(
        "spark sql -o df -v day=20261201 -v 'name=a b' --startup spark.executor.memory=2g "
        "--runtime wds.linkis.rm.yarnqueue=q --special k=v=w --creator nb -n 50 --timeout 1.5 "
        "--quiet --view text"
    )
    assert options == CellOptions(
        engine="spark",
        run_type="sql",
        output="df",
        variables={"day": "20261201", "name": "a b"},
        startup={"spark.executor.memory": "2g"},
        runtime={"wds.linkis.rm.yarnqueue": "q"},
        special={"k": "v=w"},
        creator="nb",
        limit=50,
        timeout=1.5,
        quiet=True,
        view="text",
    )


def test_options_may_come_before_the_engine() -> None:
    options = parse_cell_line("--background python")
    assert options.engine == "python"
    assert options.run_type is None
    assert options.background


def test_dollar_and_braces_reach_the_parser_unexpanded() -> None:
    assert parse_cell_line("shell -v 'x=${y}' -v z={w}").variables == {"x": "${y}", "z": "{w}"}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("spark --bogus", "unrecognized arguments: --bogus"),
        ("spark sql extra", "unrecognized arguments: extra"),
        ("spark -v novalue", "is not KEY=VALUE"),
        ("spark -v =x", "is not KEY=VALUE"),
        ("spark -v 1x=2", "a variable name starts with a letter"),
        ("spark --startup spark.executor.memory", "is not KEY=VALUE"),
        ("spark --runtime =v", "is not KEY=VALUE"),
        ("spark --special nokey", "is not KEY=VALUE"),
        ("'my engine'", "is not a valid name"),
        ("spark 'sq l'", "is not a valid name"),
        ("spark --creator 'a b'", "is not a valid name"),
        ("spark -n ten", "is not a row count"),
        ("spark -n -3", "is not a row count"),
        ("spark --timeout 0", "is not a duration"),
        ("spark --timeout soon", "is not a duration"),
        ("spark --timeout inf", "is not a duration"),
        ("spark -o 2df", "is not a Python variable name"),
        ("spark -o class", "is not a Python variable name"),
        ("spark -o df --background", "-o cannot be used with --background"),
        ("spark --view html", "invalid choice"),
        ("spark -v 'x=1", "close the quotes"),
        ("spark --back", "unrecognized arguments"),
    ],
)
def test_mistakes_are_one_line_usage_errors(line: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_cell_line(line)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "abc"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (np.int64(7), "7"),
        (2.5, "2.5"),
        (np.float64(0.1), "0.1"),
        (Decimal("12.30"), "12.30"),
        (date(2026, 12, 1), "2026-12-01"),
        (datetime(2026, 12, 1, 8, 5, 9), "2026-12-01 08:05:09"),
        (pd.Timestamp("2026-12-01 23:59:00"), "2026-12-01 23:59:00"),
    ],
)
def test_scalars_render_as_linkis_expects(value: object, text: str) -> None:
    assert render_variable(value) == text


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, pd.DataFrame({"a": [1]}), None, 1j, object()])
def test_non_scalars_do_not_render(value: object) -> None:
    assert render_variable(value) is None


def test_variables_come_from_v_first_then_the_namespace() -> None:
    code = "select ${a}, ${b}, ${ c }, ${run_date}, ${d + 1} from t"
    namespace = {"a": "from-ns", "b": 3, "d": date(2026, 1, 2), "unused": 9}
    variables = resolve_variables(code, {"a": "from-v", "extra": "x"}, namespace)
    assert variables == {"a": "from-v", "extra": "x", "b": "3", "d": "2026-01-02"}


def test_a_v_value_shadows_a_non_scalar_in_the_namespace() -> None:
    assert resolve_variables("${rows}", {"rows": "5"}, {"rows": [1, 2]}) == {"rows": "5"}


@pytest.mark.parametrize("value", [[1, 2], pd.DataFrame({"a": [1]}), None])
def test_a_reference_to_a_non_scalar_is_a_usage_error(value: object) -> None:
    with pytest.raises(UsageError, match=r"\$\{rows\} refers to a .* pass -v rows=VALUE"):
        resolve_variables("select ${rows}", {}, {"rows": value})
