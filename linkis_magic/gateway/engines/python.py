"""The python engine: one persistent interpreter namespace per engine process (user + creator).

stdout goes to the job log and to a text result set; the value of the last expression becomes a
table (a pandas DataFrame), a picture (a matplotlib figure, ``_repr_png_``), html (``_repr_html_``)
or text (its repr). A kill interrupts the running code; the names survive.
"""

from __future__ import annotations

import ast
import contextlib
import io
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from linkis_magic.gateway.engines.base import Column, Engine, EngineError, JobContext

_CELL = "<linkis-python>"


class _LineWriter(io.TextIOBase):
    """A text stream that hands complete lines to ``emit`` and keeps all text written."""

    def __init__(self, emit: Callable[[str], None], keep: bool) -> None:
        self._emit = emit
        self._keep = keep
        self._parts: list[str] = []
        self.text: list[str] = []

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._keep:
            self.text.append(s)
        if "\n" not in s:
            self._parts.append(s)
            return len(s)
        first, *rest = s.split("\n")
        self._parts.append(first)
        self._emit("".join(self._parts))
        tail = rest.pop()
        for line in rest:
            self._emit(line)
        self._parts = [tail] if tail else []
        return len(s)

    def flush(self) -> None:
        if self._parts:
            self._emit("".join(self._parts))
            self._parts = []


class PythonEngine(Engine):
    """Runs Python code in a namespace that lives as long as the engine process."""

    name = "python"
    run_types = ("python", "py", "py3", "python3")

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self._lock = threading.Lock()
        self._running = False
        self._main = threading.main_thread().ident

    def execute(self, ctx: JobContext) -> None:
        if ctx.run_type.lower() not in self.run_types:
            raise EngineError(
                f"The python engine runs {', '.join(self.run_types)}, not {ctx.run_type!r}"
            )
        try:
            body, last = _compile(ctx.code)
        except SyntaxError:
            raise EngineError(_format_syntax_error()) from None

        out = _LineWriter(lambda line: ctx.log("INFO", line), keep=True)
        err = _LineWriter(lambda line: ctx.log("WARN", line), keep=False)
        value: Any = None
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                with self._lock:
                    self._running = True
                try:
                    if body is not None:
                        exec(body, self.namespace)
                    if last is not None:
                        value = eval(last, self.namespace)
                finally:
                    with self._lock:
                        self._running = False
                    out.flush()
                    err.flush()
        except KeyboardInterrupt:
            if ctx.cancelled.is_set():
                return
            raise
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise EngineError(f"The code called sys.exit({exc.code!r})") from None
        except BaseException as exc:
            if ctx.cancelled.is_set():
                return
            raise EngineError(_format_user_traceback(exc)) from None
        if ctx.cancelled.is_set():
            return

        self.namespace["_"] = value
        text = "".join(out.text)
        rich = _rich_result(value)
        if value is not None and rich is None:
            text += repr(value) + "\n"
        if text:
            ctx.text(text)
        if rich == "table":
            write_dataframe(ctx, value)
        elif rich == "picture":
            ctx.picture(_png_of(value))
        elif rich == "html":
            ctx.html(str(value._repr_html_()))

    def cancel(self, ctx: JobContext) -> None:
        """Interrupt the code running on the main thread (KeyboardInterrupt, names survive)."""
        with self._lock:
            running = self._running
        if running and self._main is not None:
            signal.pthread_kill(self._main, signal.SIGINT)


def _compile(code: str) -> tuple[CodeType | None, CodeType | None]:
    tree = ast.parse(code, _CELL, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        final = tree.body.pop()
        assert isinstance(final, ast.Expr)
        last = compile(ast.Expression(final.value), _CELL, "eval")
    body = compile(tree, _CELL, "exec") if tree.body else None
    return body, last


def _format_syntax_error() -> str:
    etype, value, _tb = sys.exc_info()
    assert etype is not None
    return "".join(traceback.format_exception_only(etype, value)).rstrip()


def _format_user_traceback(exc: BaseException) -> str:
    """The traceback from the user's code on (engine frames left out)."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != _CELL:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
    return "".join(lines).rstrip()


def _rich_result(value: object) -> str | None:
    """How the last value becomes a result set other than text: table, picture or html."""
    if value is None:
        return None
    if _is_dataframe(value):
        return "table"
    if callable(getattr(value, "savefig", None)) or callable(getattr(value, "_repr_png_", None)):
        return "picture"
    if callable(getattr(value, "_repr_html_", None)):
        return "html"
    return None


def _png_of(value: Any) -> bytes:
    if callable(getattr(value, "savefig", None)):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png")
        return buffer.getvalue()
    png = value._repr_png_()
    return png if isinstance(png, bytes) else b""


def _is_dataframe(value: object) -> bool:
    cls = type(value)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")


def linkis_type(dtype: Any, sample: object = None) -> str:
    """Linkis's dataType name for a pandas dtype (a sample value decides for object columns)."""
    import datetime as dt
    import decimal

    kind = getattr(dtype, "kind", "O")
    name = str(dtype).lower()
    if kind == "b" or name == "boolean":
        return "boolean"
    if kind in "iu":
        return "bigint" if getattr(dtype, "itemsize", 8) >= 8 else "int"
    if kind == "f":
        return "float" if getattr(dtype, "itemsize", 8) == 4 else "double"
    if kind == "M" or name.startswith("datetime64"):
        return "timestamp"
    if kind == "m":
        return "string"
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, dt.datetime):
        return "timestamp"
    if isinstance(sample, dt.date):
        return "date"
    if isinstance(sample, decimal.Decimal):
        digits = sample.as_tuple()
        scale = max(-int(digits.exponent), 0) if isinstance(digits.exponent, int) else 0
        return f"decimal({max(len(digits.digits), scale, 10)},{scale})"
    if isinstance(sample, int):
        return "bigint"
    if isinstance(sample, float):
        return "double"
    return "string"


def write_dataframe(ctx: JobContext, frame: Any) -> int:
    """Write a pandas DataFrame as a table result set (columns rendered to strings at once)."""
    columns = []
    values = []
    head = frame.head(ctx.row_limit) if len(frame) > ctx.row_limit else frame
    for index in range(head.shape[1]):
        series = head.iloc[:, index]
        non_null = series.dropna()
        sample = non_null.iloc[0] if len(non_null) else None
        columns.append(Column(str(head.columns[index]), linkis_type(series.dtype, sample)))
        values.append(_strings(series))
    written = ctx.table(columns, zip(*values, strict=True) if values else iter(()))
    if len(frame) > len(head):
        ctx.log("WARN", f"The result set was cut at {written} rows (the row limit).")
    return written


def _strings(series: Any) -> list[str]:
    """A column as Linkis strings: NULL for missing values, booleans lower-case."""
    from linkis_magic.gateway.resultsets import NULL, render_value

    missing = series.isna().to_numpy()
    kind = getattr(series.dtype, "kind", "O")
    if kind == "b":
        flags = series.fillna(False).astype(bool).to_numpy()
        out = ["true" if v else "false" for v in flags]
    elif kind in "iuM":
        out = series.astype(str).tolist()
    elif kind == "f" and getattr(series.dtype, "itemsize", 8) == 4:
        out = [str(v) for v in series.astype("float32").to_numpy()]
    elif kind == "f":
        out = [repr(float(v)) for v in series.astype("float64").to_numpy()]
    else:
        out = [render_value(v) for v in series.tolist()]
    if missing.any():
        for position in missing.nonzero()[0].tolist():
            out[position] = NULL
    return out
