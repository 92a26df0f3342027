"""Live views of a job: JobView (ipywidgets) and TextView (plain text), throttled renders.

A view subscribes to a :class:`~linkis_magic.jobs.Job`; the job calls back on the client's loop
thread, and the view only marks itself dirty there. Its own daemon thread renders at most once per
``interval``, and once more after the last change, so the final state is always drawn. Widgets are
changed through their traits and ``Output.append_*`` only, never ``with out:``, so nothing depends
on which cell is running when a render happens.
"""

from __future__ import annotations

import contextvars
import html
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TextIO

from .protocol import JobStatus, ProgressInfo, log_level_of

if TYPE_CHECKING:
    from .jobs import Job
    from .results import ResultSet

logger = logging.getLogger(__name__)

STATUS_COLOURS = {
    JobStatus.INITED: "#6c757d",
    JobStatus.WAIT_FOR_RETRY: "#6c757d",
    JobStatus.SCHEDULED: "#6c757d",
    JobStatus.RUNNING: "#0d6efd",
    JobStatus.SUCCEED: "#198754",
    JobStatus.FAILED: "#dc3545",
    JobStatus.CANCELLED: "#fd7e14",
    JobStatus.TIMEOUT: "#dc3545",
}
LEVEL_COLOURS = {"ERROR": "#dc3545", "WARN": "#b8860b"}
ANSI = {"ERROR": "\x1b[31m", "WARN": "\x1b[33m"}
ANSI_RESET = "\x1b[0m"
LEVELS = ("ALL", "ERROR", "WARN", "INFO")


# --------------------------------------------------------------------------- throttling


class Throttle:
    """Calls ``render`` on its own daemon thread at most once per ``interval`` seconds.

    :meth:`poke` (any thread, cheap) asks for a render; pokes that arrive while a render is due
    are merged into it. With ``tick`` set, a render also happens every ``tick`` seconds without a
    poke (elapsed clocks). ``render`` returns False to end the thread. ``setup`` runs first on
    the thread (to route its output to the right cell).
    """

    def __init__(
        self,
        render: Callable[[], bool],
        *,
        interval: float,
        tick: float | None = None,
        setup: Callable[[], None] | None = None,
        name: str = "linkis-view",
    ) -> None:
        self._render = render
        self._interval = interval
        self._tick = tick
        self._setup = setup
        self._cond = threading.Condition()
        self._dirty = True
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.renders = 0

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (a render under way finishes first). Safe to call from the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        if self._setup is not None:
            self._setup()
        next_allowed = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._dirty or self._stopping, timeout=self._tick)
                delay = next_allowed - time.monotonic()
                if delay > 0:
                    self._cond.wait_for(lambda: self._stopping, timeout=delay)
                if self._stopping:
                    return
                self._dirty = False
            try:
                keep = self._render()
            except Exception:  # a drawing bug must not end the updates of a running job
                logger.exception("view render failed")
                keep = True
            self.renders += 1
            next_allowed = time.monotonic() + self._interval
            if not keep:
                return


# --------------------------------------------------------------------------- formatting


def format_elapsed(seconds: float | None) -> str:
    """``3.2 s``, ``2 min 05 s``, ``1 h 02 min``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def elapsed_seconds(job: Job) -> float | None:
    value: Any = getattr(job, "elapsed", None)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    return None


def stage_line(info: ProgressInfo) -> str:
    """One progressInfo entry in words."""
    return (
        f"{info.id}: {info.succeed_tasks} succeeded, {info.running_tasks} running, "
        f"{info.failed_tasks} failed of {info.total_tasks}"
    )


def leveled_lines(text: str) -> list[tuple[str | None, str]]:
    """Each log line with its level; lines without a timestamp inherit the previous level."""
    out: list[tuple[str | None, str]] = []
    level: str | None = None
    for line in text.splitlines():
        found = log_level_of(line)
        if found is not None:
            level = found
        out.append((level, line))
    return out


def log_text(job: Job, level: str) -> str:
    """The job's log so far: every line for ``ALL``, else Linkis's bucket of that level."""
    logs = job.logs
    return {
        "ERROR": logs.error,
        "WARN": logs.warn,
        "INFO": logs.info,
    }.get(level, logs.all)


def table_caption(result: ResultSet, number: int) -> str:
    """``table 1: 120 rows × 3 columns`` and a note when a row limit cut it short."""
    frame = result.data
    rows, cols = getattr(frame, "shape", (0, 0))
    text = f"table {number}: {rows} rows × {cols} columns"
    if result.truncated:
        text += (
            f" (first {rows} rows; the result has more: raise -n or"
            " %config LinkisMagic.row_limit, 0 for all)"
        )
    return text


class Caption:
    """A one-line note shown above a result, in plain text and HTML."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {
            "text/plain": self.text,
            "text/html": f'<div style="color:#6c757d;font-size:90%">{html.escape(self.text)}</div>',
        }


class PlainText:
    """A text result set, shown as is (not as a Python string repr)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {"text/plain": self.text}


def result_displays(results: Sequence[ResultSet], *, skip_first_table: bool = False) -> list[Any]:
    """What to display for ``results``, in order: captions, DataFrames, text, HTML, images.

    With ``skip_first_table`` the first table gets its caption but not its display (the cell
    returns it, so IPython displays it as the cell's value).
    """
    from IPython.display import HTML, Image

    shown: list[Any] = []
    tables = 0
    for result in results:
        if result.kind == "table":
            tables += 1
            shown.append(Caption(table_caption(result, tables)))
            if not (skip_first_table and tables == 1):
                shown.append(result.data)
        elif result.kind == "html":
            shown.append(HTML(str(result.data)))
        elif result.kind == "picture":
            data = result.data
            shown.append(Image(data=data) if isinstance(data, bytes) else PlainText(str(data)))
        else:
            shown.append(PlainText(str(result.data)))
    return shown


# --------------------------------------------------------------------------- views


def _thread_parent_setup() -> Callable[[], None] | None:
    """Route a thread's output to the cell that is running now (ipykernel 7's opt-in routing)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_thread_parent"):
        return None
    parent = shell.get_parent()

    def setup() -> None:
        shell.set_thread_parent(parent)

    return setup


class BaseView:
    """What both views share: subscription, the render thread, finishing.

    ``background`` views follow the job to its end on their own thread and then show its
    results (fetched with ``limit``); foreground views are finished by the cell, which calls
    :meth:`close` after the wait and shows the results itself.
    """

    def __init__(
        self,
        job: Job,
        *,
        background: bool = False,
        interval: float = 0.25,
        log_lines: int = 200,
        limit: int | None = None,
    ) -> None:
        self.job = job
        self.background = background
        self.log_lines = log_lines
        self.limit = limit
        self.interrupted = False
        self._lock = threading.RLock()
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None
        self._throttle = Throttle(
            self._tick, interval=interval, tick=1.0, setup=_thread_parent_setup()
        )

    @property
    def renders(self) -> int:
        """How many times the view has been drawn (its thread plus the final draw)."""
        return self._throttle.renders

    def show(self) -> None:
        """Display the view (main thread), then follow the job."""
        self._display()
        self._unsubscribe = self.job.subscribe(self._on_event)
        self._throttle.start()

    def close(self) -> None:
        """Stop following and draw the final state once more (main thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop()
        with self._lock:
            self.render()
            self._throttle.renders += 1
        self.finished()

    def _stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._throttle.stop()

    def _on_event(self, job: Job, event: object) -> None:
        if self.background and job.done:
            self._on_done()
        self._throttle.poke()

    def _on_done(self) -> None:
        """Called on the client's thread when a background job ends, before its waiters wake."""

    def _tick(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            # Read "done" before drawing: a job that ends between the two is drawn once more at
            # the next tick, so the final state is never skipped.
            done = self.background and self.job.done
            self.render()
        if not done:
            return True
        with self._lock:
            self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.finished()
        self._finish_background()
        return False

    def _finish_background(self) -> None:
        if self.job.status is not JobStatus.SUCCEED:
            return
        try:
            results = self.job.results(self.limit)
        except Exception as exc:
            logger.warning("cannot fetch the results of %s: %s", self.job.exec_id, exc)
            self.show_error(f"cannot fetch the results: {exc}")
            return
        self.show_results(results)

    def _display(self) -> None:
        raise NotImplementedError

    def finished(self) -> None:
        """Called once when the view stops following the job."""

    def render(self) -> None:
        """Draw the job's current state."""
        raise NotImplementedError

    def show_results(self, results: Sequence[ResultSet]) -> None:
        """Show result sets inside the view (background jobs)."""
        raise NotImplementedError

    def show_error(self, text: str) -> None:
        """Show a line in red inside the view."""
        raise NotImplementedError


class JobView(BaseView):
    """An ipywidgets panel: header, status, progress bar, stages, log, results, Cancel."""

    def __init__(self, job: Job, **kwargs: Any) -> None:
        super().__init__(job, **kwargs)
        import ipywidgets as w
        from ipywidgets.widgets.widget_string import HTMLStyle

        # Widgets whose layout and style never change share one model of each: every model is
        # a comm the kernel opens and the frontend builds, for every cell.
        layout = w.Layout()
        html_style = HTMLStyle()

        def html() -> Any:
            return w.HTML(layout=layout, style=html_style)

        self.header = html()
        self.status = html()
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="50%"))
        self.percent = w.Label("0%", layout=layout)
        self.stages = html()
        self.level = w.Dropdown(
            options=[("all", "ALL"), ("errors", "ERROR"), ("warnings", "WARN"), ("info", "INFO")],
            value="ALL",
            description="level",
            layout=w.Layout(width="12em"),
        )
        self.log = html()
        self.log_box = w.Accordion(
            children=[w.VBox([self.level, self.log], layout=layout)],
            selected_index=None,
            layout=layout,
        )
        self.log_box.set_title(0, "log")
        self.cancel = w.Button(description="Cancel", icon="stop", button_style="warning")
        self.results = w.Output(layout=layout)
        self.panel = w.VBox(
            [
                self.header,
                w.HBox([self.status, self.cancel], layout=layout),
                w.HBox([self.bar, self.percent], layout=layout),
                self.stages,
                self.log_box,
                self.results,
            ],
            layout=layout,
        )
        if not self.background:
            # A click would queue behind the running cell (PEERS.md 4.4): interrupt instead.
            self.cancel.layout.display = "none"

        def bundle(**kwargs: Any) -> Any:
            # ipywidgets' own bundle also builds a repr of the whole widget tree, only to have
            # its text/plain replaced here.
            view = {"version_major": 2, "version_minor": 0, "model_id": self.panel.model_id}
            return {
                "text/plain": self.summary(),
                "application/vnd.jupyter.widget-view+json": view,
            }

        # Where widgets cannot render (nbconvert, terminals) show one line, not the widget tree.
        self.panel._repr_mimebundle_ = bundle
        self.cancel.on_click(self._on_cancel)
        self.level.observe(self._on_level, names="value")
        self._log_key: tuple[str, int] = ("", -1)
        self._handle: Any = None
        self.render()

    def _display(self) -> None:
        from IPython.display import display

        self._handle = display(self.panel, display_id=True)

    def _on_done(self) -> None:
        # Draw the final state now rather than at the next tick: a cell that waits for this
        # background job then returns after the widgets changed, so a notebook run headless
        # (nbclient, papermill) saves the final state with that cell. Results still come from
        # the view's own thread (fetching them here would block the client's loop).
        # The client's tasks carry the context of the cell that submitted the job; an empty
        # one sends these messages, as from a plain thread, with the cell running now.
        with self._lock:
            if not self._closed:
                contextvars.Context().run(self.render)

    def finished(self) -> None:
        # Saved notebooks and frontends without widgets keep the plain-text line: make it final.
        if self._handle is not None:
            self._handle.update(self.panel)

    def summary(self) -> str:
        """One line for frontends without widgets."""
        job = self.job
        task = f" taskID {job.task_id}" if job.task_id is not None else ""
        elapsed = format_elapsed(elapsed_seconds(job))
        tail = f" ({elapsed})" if elapsed and job.done else ""
        return f"Linkis {job.engine}/{job.run_type} execID {job.exec_id}{task}: {job.status}{tail}"

    def _on_cancel(self, button: Any) -> None:
        if self.job.done:
            return
        self.cancel.disabled = True
        self.cancel.description = "Cancelling"
        try:
            self.job.kill()
        except Exception as exc:
            logger.warning("kill of %s failed: %s", self.job.exec_id, exc)
            self.show_error(f"kill failed: {exc}")
            self.cancel.disabled = False
            self.cancel.description = "Cancel"
        self._throttle.poke()

    def _on_level(self, change: Any) -> None:
        with self._lock:
            self._render_log()

    def render(self) -> None:
        job = self.job
        status = job.status
        self.header.value = self._header_html()
        self.status.value = self._status_html()
        self.bar.value = float(job.progress)
        self.percent.value = f"{job.progress:.0%}"
        if status.is_terminal:
            self.bar.bar_style = {
                JobStatus.SUCCEED: "success",
                JobStatus.CANCELLED: "warning",
            }.get(status, "danger")
            self.cancel.disabled = True
            self.cancel.layout.display = "none"
        self.stages.value = self._stages_html(job.progress_info)
        self._render_log()
        if status in (JobStatus.FAILED, JobStatus.TIMEOUT) and self.log_box.selected_index is None:
            self.log_box.selected_index = 0
            self.level.value = "ALL"

    def _header_html(self) -> str:
        job = self.job
        exec_id = html.escape(job.exec_id) if job.exec_id else "pending"
        task = f" · taskID <code>{job.task_id}</code>" if job.task_id is not None else ""
        return (
            f"<b>Linkis</b> {html.escape(job.engine)} / {html.escape(job.run_type)}"
            f" · execID <code>{exec_id}</code>{task}"
        )

    def _status_html(self) -> str:
        job = self.job
        status = job.status
        colour = STATUS_COLOURS.get(status, "#6c757d")
        parts = [f'<b style="color:{colour}">{html.escape(str(status))}</b>']
        elapsed = format_elapsed(elapsed_seconds(job))
        if elapsed:
            parts.append(elapsed)
        waiting = getattr(job, "waiting_size", None)
        if waiting is not None and not status.is_terminal and status is not JobStatus.RUNNING:
            parts.append(f"queue position {waiting + 1}")
        if self.interrupted and status is not JobStatus.CANCELLED:
            parts.append("kill sent")
        if not self.background and not status.is_terminal:
            parts.append('<span style="color:#6c757d">interrupt the kernel to cancel</span>')
        return " · ".join(parts)

    @staticmethod
    def _stages_html(infos: Iterable[ProgressInfo]) -> str:
        rows = [
            f"<tr><td>{html.escape(i.id)}</td><td>{i.succeed_tasks}</td>"
            f"<td>{i.running_tasks}</td><td>{i.failed_tasks}</td><td>{i.total_tasks}</td></tr>"
            for i in infos
        ]
        if not rows:
            return ""
        head = (
            "<tr><th>stage</th><th>succeeded</th><th>running</th><th>failed</th><th>total</th></tr>"
        )
        style = "font-size:90%;border-collapse:separate;border-spacing:1em 0"
        return f'<table style="{style}">{head}{"".join(rows)}</table>'

    def _render_log(self) -> None:
        level = str(self.level.value)
        text = log_text(self.job, level)
        if (level, len(text)) == self._log_key:
            return
        self._log_key = (level, len(text))
        lines = leveled_lines(text)
        hidden = max(0, len(lines) - self.log_lines)
        shown = lines[hidden:] if self.log_lines else []
        body = []
        if hidden:
            body.append(f"<i>… {hidden} earlier lines (%linkis logs {self.job.exec_id})</i>")
        for line_level, line in shown:
            colour = LEVEL_COLOURS.get(line_level or "")
            escaped = html.escape(line)
            body.append(f'<span style="color:{colour}">{escaped}</span>' if colour else escaped)
        self.log.value = (
            '<pre style="max-height:22em;overflow:auto;font-size:85%;margin:0">'
            + "\n".join(body)
            + "</pre>"
        )
        self.log_box.set_title(0, f"log ({len(lines)} lines)")

    def show_results(self, results: Sequence[ResultSet]) -> None:
        for item in result_displays(results):
            self.results.append_display_data(item)

    def show_error(self, text: str) -> None:
        self.results.append_stderr(text + "\n")


class TextView(BaseView):
    """The same story as printed lines: status changes, progress, new log lines, results."""

    def __init__(self, job: Job, *, stream: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(job, **kwargs)
        self._stream = stream
        self._last_status: JobStatus | None = None
        self._last_progress: tuple[int, tuple[ProgressInfo, ...]] | None = None
        self._last_waiting: int | None = None
        self._log_seen = 0
        self._level: str | None = None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def _display(self) -> None:
        self.render()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def render(self) -> None:
        job = self.job
        out: list[str] = []
        if job.status is not self._last_status:
            self._last_status = job.status
            out.append(self._status_line())
        waiting = getattr(job, "waiting_size", None)
        if waiting is not None and waiting != self._last_waiting and not job.status.is_terminal:
            self._last_waiting = waiting
            out.append(f"  queue position {waiting + 1}")
        progress = (round(job.progress * 100), tuple(job.progress_info))
        if progress != self._last_progress and (progress[0] or progress[1]):
            self._last_progress = progress
            out.append(f"  progress {progress[0]}%")
            out.extend(f"    {stage_line(i)}" for i in progress[1])
        out.extend(self._new_log_lines())
        if out:
            self._write("\n".join(out) + "\n")

    def _status_line(self) -> str:
        job = self.job
        ids = f"execID {job.exec_id}" if job.exec_id else "execID pending"
        if job.task_id is not None:
            ids += f", taskID {job.task_id}"
        elapsed = format_elapsed(elapsed_seconds(job))
        tail = f" ({elapsed})" if elapsed else ""
        return f"[linkis {job.engine}/{job.run_type} {ids}] {job.status}{tail}"

    def _new_log_lines(self) -> list[str]:
        lines = leveled_lines(self.job.logs.all)
        fresh = lines[self._log_seen :]
        self._log_seen = len(lines)
        skipped = max(0, len(fresh) - self.log_lines) if self.log_lines else len(fresh)
        out = [f"  … {skipped} log lines skipped"] if skipped else []
        for level, line in fresh[skipped:]:
            colour = ANSI.get(level or "")
            out.append(f"{colour}{line}{ANSI_RESET}" if colour else line)
        return out

    def show_results(self, results: Sequence[ResultSet]) -> None:
        from IPython.display import display

        for item in result_displays(results):
            display(item)

    def show_error(self, text: str) -> None:
        self._write(f"{ANSI['ERROR']}{text}{ANSI_RESET}\n")


def make_view(kind: str, job: Job, **kwargs: Any) -> BaseView:
    """A JobView for ``widget``, a TextView for ``text``, and for ``auto`` whichever fits."""
    if kind == "auto":
        kind = "widget" if widgets_available() else "text"
    if kind == "widget":
        return JobView(job, **kwargs)
    return TextView(job, **kwargs)


def widgets_available() -> bool:
    """True inside a Jupyter kernel (widgets need a frontend; terminal IPython has none)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
