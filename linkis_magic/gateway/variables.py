"""Linkis-style ``${name}`` substitution for the embedded gateway (PROTOCOL.md section 6).

Covers ``@set`` lines in code, ``params.variable``, the run_date family of built-ins, numeric
``+ - * /`` and date ``+ -`` (days). Undefined names stay as written.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping

from linkis_magic.protocol import VARIABLE_PATTERN

# codeType -> language (linkis.codeType.language.relation); other run types are not substituted.
_LANGUAGE_BY_RUN_TYPE = {
    **dict.fromkeys(
        ("sql", "hql", "jdbc", "hive", "psql", "fql", "tsql", "nebula", "ngql", "aisql"), "sql"
    ),
    "starrocks": "sql",
    **dict.fromkeys(("python", "py", "pyspark", "py3"), "python"),
    "java": "java",
    "scala": "scala",
    **dict.fromkeys(("sh", "shell"), "shell"),
    **dict.fromkeys(("json", "data_calc"), "json"),
}

_SET_PREFIX = {"sql": "--", "python": "#", "shell": "#", "scala": "//", "java": "!!"}

_DAY = re.compile(r"^\d{8}$")
_DAY_STD = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class VariableError(ValueError):
    """An ``@set`` line or a variable could not be understood (Linkis 20044/20045/20050)."""

    def __init__(self, err_code: int, desc: str) -> None:
        super().__init__(desc)
        self.err_code = err_code
        self.desc = desc


def language_of(run_type: str) -> str | None:
    return _LANGUAGE_BY_RUN_TYPE.get(run_type.lower())


def builtin_variables(run_date: dt.date, user: str) -> dict[str, str]:
    """The built-in date variables relative to ``run_date`` and the user names."""
    today = run_date + dt.timedelta(days=1)
    month_begin = run_date.replace(day=1)
    month_end = _month_end(run_date)
    quarter_first = ((run_date.month - 1) // 3) * 3 + 1
    quarter_begin = run_date.replace(month=quarter_first, day=1)
    quarter_end = _month_end(run_date.replace(month=quarter_first + 2, day=1))
    half_first = 1 if run_date.month <= 6 else 7
    half_begin = run_date.replace(month=half_first, day=1)
    half_end = _month_end(run_date.replace(month=half_first + 5, day=1))
    year_begin = run_date.replace(month=1, day=1)
    year_end = run_date.replace(month=12, day=31)
    now_month_begin = (today - dt.timedelta(days=1)).replace(day=1)
    out: dict[str, str] = {"user": user, "execute_user": user, "submit_user": user}
    for name, day in (
        ("run_date", run_date),
        ("run_today", today),
        ("run_month_begin", month_begin),
        ("run_month_end", month_end),
        ("run_quarter_begin", quarter_begin),
        ("run_quarter_end", quarter_end),
        ("run_half_year_begin", half_begin),
        ("run_half_year_end", half_end),
        ("run_year_begin", year_begin),
        ("run_year_end", year_end),
        ("run_month_now_begin", now_month_begin),
        ("run_month_now_end", _month_end(now_month_begin)),
    ):
        out[name] = day.strftime("%Y%m%d")
        out[name + "_std"] = day.isoformat()
    out["run_mon"] = run_date.strftime("%Y%m")
    out["run_mon_std"] = run_date.strftime("%Y-%m")
    out["run_today_h"] = dt.datetime.now().strftime("%Y%m%d%H")
    out["run_today_h_std"] = dt.datetime.now().strftime("%Y-%m-%d %H")
    return out


def _month_end(day: dt.date) -> dt.date:
    first_next = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first_next - dt.timedelta(days=1)


def set_definitions(code: str, language: str) -> dict[str, str]:
    """``@set name=value`` lines of ``code`` in its language's comment syntax."""
    prefix = _SET_PREFIX.get(language)
    if prefix is None:
        return {}
    found: dict[str, str] = {}
    marker = prefix + "@set"
    for line in code.splitlines():
        text = line.strip()
        if not text.startswith(marker):
            continue
        body = text[len(marker) :].strip().rstrip(";").strip()
        name, sep, value = body.partition("=")
        if not sep or not name.strip():
            raise VariableError(20044, f"{text} is an invalid custom variable definition")
        found.setdefault(name.strip(), value.strip())
    return found


def substitute(
    code: str,
    run_type: str,
    variables: Mapping[str, object],
    user: str,
    today: dt.date | None = None,
) -> tuple[str, dict[str, str]]:
    """``code`` with its ``${...}`` references replaced, and the variables that were in scope.

    Raises VariableError for a bad ``@set`` line or a non-string variable value.
    """
    language = language_of(run_type)
    if language is None:
        return code, {}
    for key, value in variables.items():
        if not isinstance(value, str):
            raise VariableError(20050, f"Variable replacement failed! {key} is not a string")
    scope: dict[str, str] = dict(set_definitions(code, language))
    given = {k: v for k, v in variables.items() if isinstance(v, str) and v != ""}
    run_date = _run_date(scope.get("run_date") or given.get("run_date"), today)
    builtins = builtin_variables(run_date, user)
    for key in ("user", "execute_user", "submit_user"):
        scope.setdefault(key, builtins.pop(key))
        given.pop(key, None)
    for source in (given, builtins):
        for key, value in source.items():
            scope.setdefault(key, value)

    def replace(match: re.Match[str]) -> str:
        name, op, operand = match["name"], match["op"], match["operand"]
        if name not in scope:
            return match.group(0)
        value = scope[name]
        if not op:
            return value
        return _apply(value, op, operand, scope) or match.group(0)

    return VARIABLE_PATTERN.sub(replace, code), scope


def _run_date(value: str | None, today: dt.date | None) -> dt.date:
    if value:
        try:
            if _DAY.match(value):
                return dt.datetime.strptime(value, "%Y%m%d").date()
            if _DAY_STD.match(value):
                return dt.date.fromisoformat(value)
        except ValueError:
            pass
    return (today or dt.date.today()) - dt.timedelta(days=1)


def _apply(value: str, op: str, operand: str, scope: Mapping[str, str]) -> str | None:
    """``value op operand`` as Linkis computes it, or None when it cannot."""
    operand = scope.get(operand, operand)
    if _DAY.match(value) or _DAY_STD.match(value):
        return _shift_date(value, op, operand)
    try:
        left = decimal.Decimal(value)
        right = decimal.Decimal(operand)
    except decimal.InvalidOperation:
        return None
    if value.startswith("0") and value != "0" and not value.startswith("0."):
        return None
    try:
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        else:
            result = left / right
    except (decimal.DivisionByZero, decimal.InvalidOperation):
        return None
    if result == result.to_integral_value():
        return str(result.quantize(decimal.Decimal(1)))
    return str(result.normalize())


def _shift_date(value: str, op: str, operand: str) -> str | None:
    if op not in "+-" or not operand.isdigit():
        return None
    std = "-" in value
    try:
        day = dt.date.fromisoformat(value) if std else dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None
    delta = dt.timedelta(days=int(operand))
    day = day + delta if op == "+" else day - delta
    return day.isoformat() if std else day.strftime("%Y%m%d")
