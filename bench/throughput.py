"""Event throughput: a job writes log lines as fast as it can; how fast they reach the Job.

The job waits until its two readers follow it, then prints N numbered lines in a loop. The
readers run side by side on the same stream:

- the client's Job (a ``LinkisClient``), with a ``JobView`` subscribed as in a notebook, its
  widgets talking to a recording comm (as ipywidgets' own tests do) so every message it would
  send to the browser is counted;
- a bare ``websockets`` loop in its own process (``bench.bare_reader``): the ceiling.

Each reader's rate is N lines over the time from the start signal to its seeing the last line.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench.harness import BenchGateway, Figure, Size, bare_reader, go_snippet, ms, verdict, wait_for
from linkis_magic import protocol as p
from linkis_magic.config import Settings

TARGET_RATIO = 0.5
TARGET_MESSAGES_PER_S = 10

JOB_CODE = """\
for i in range({lines}):
    print("T", i)
"""


class RecordingComm:
    """A widget comm whose frontend is a list: every message a widget sends, with its time."""

    kernel = "recording"

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.messages: list[tuple[float, Any]] = []
        self._lock = threading.Lock()

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        with self._lock:
            self.messages.append((time.monotonic(), data))

    def on_msg(self, callback: Callable[[Any], None]) -> None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextlib.contextmanager
def recording_comms() -> Iterator[list[RecordingComm]]:
    """Widgets created inside talk to RecordingComms (listed in creation order)."""
    import comm

    created: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made = RecordingComm(**kwargs)
        created.append(made)
        return made

    original = comm.create_comm
    comm.create_comm = create_comm  # type: ignore[assignment]
    try:
        yield created
    finally:
        comm.create_comm = original


def headless_view(job: Any, **kwargs: Any) -> Any:
    """A JobView that is not displayed (there is no frontend) but follows the job as usual."""
    from linkis_magic.views import JobView

    class HeadlessJobView(JobView):
        def _display(self) -> None:
            return None

    return HeadlessJobView(job, **kwargs)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most of ``times`` (sorted) that fall in any interval of ``window`` seconds."""
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


class LastLine:
    """The Job's subscriber: when the line ``T <last>`` arrives."""

    def __init__(self, last: int) -> None:
        self.marker = f" T {last}\n"
        self.seen: float | None = None
        self.first: float | None = None

    def __call__(self, job: Any, event: Any) -> None:
        if not isinstance(event, p.LogLines):
            return
        now = time.monotonic()
        if self.first is None and " T 0\n" in event.all:
            self.first = now
        if self.seen is None and self.marker in event.all:
            self.seen = now


def run(gw: BenchGateway, size: Size) -> Figure:
    lines = size.throughput_lines
    go = gw.data_dir / f"go-{time.monotonic_ns()}"
    client = gw.client()
    reader = None
    try:
        client.submit("0", engine="python").wait(timeout=120)  # the engine process is warm
        with recording_comms() as comms:
            job = client.submit(go_snippet(go) + JOB_CODE.format(lines=lines), engine="python")
            last = LastLine(lines - 1)
            job.subscribe(last)
            defaults = Settings()
            view = headless_view(
                job, interval=defaults.update_interval, log_lines=defaults.log_lines
            )
        wait_for(lambda: job.exec_id is not None or job.done, 30, "the execID")
        reader = bare_reader(gw, job.exec_id)
        view.show()
        shown = time.monotonic()
        go.touch()
        started = time.monotonic()
        job.wait(timeout=lines / 1000 + 120)
        view.close()
        closed = time.monotonic()
        bare = reader.result()
    finally:
        go.touch()  # a job left waiting would hold the engine for a minute
        if reader is not None:
            reader.close()
        client.close()
    return _figure(size, job, last, bare, comms, view, started, shown, closed)


def _figure(
    size: Size,
    job: Any,
    last: LastLine,
    bare: dict[str, Any],
    comms: list[RecordingComm],
    view: Any,
    started: float,
    shown: float,
    closed: float,
) -> Figure:
    lines = size.throughput_lines
    if last.seen is None:
        raise RuntimeError("the Job never saw the last line")
    bare_last = bare["seen"].get(lines - 1)
    if bare_last is None:
        raise RuntimeError("the bare reader never saw the last line")
    job_rate = lines / (last.seen - started)
    bare_rate = lines / (bare_last - started)
    ratio = job_rate / bare_rate

    stamps = sorted(t for c in comms for t, _ in c.messages if shown <= t <= closed)
    per_second = len(stamps) / (closed - shown)
    busiest = max_in_window(stamps)
    final_line = job.logs.all.rstrip("\n").rsplit("\n", 1)[-1]
    log_updates = [
        data["state"]["value"]
        for t, data in view.log.comm.messages
        if isinstance(data, dict) and "value" in data.get("state", {})
    ]
    last_shown = bool(log_updates) and html.escape(final_line) in log_updates[-1]

    targets = {
        "ratio_at_least_0.5": ratio >= TARGET_RATIO,
        "widget_messages_at_most_10_per_s": busiest <= TARGET_MESSAGES_PER_S,
        "last_line_shown": last_shown,
    }
    values = {
        "lines": lines,
        "job_lines_per_s": job_rate,
        "bare_websockets_lines_per_s": bare_rate,
        "ratio": ratio,
        "job_first_line_after_s": (last.first or started) - started,
        "job_last_line_after_s": last.seen - started,
        "bare_last_line_after_s": bare_last - started,
        "push_frames": bare["frames"],
        "job_lines_held": job.logs.lines,
        "view_seconds": closed - shown,
        "view_renders": view.renders,
        "widget_messages": len(stamps),
        "widget_messages_per_s": per_second,
        "widget_messages_busiest_1s": busiest,
        "last_line_shown": last_shown,
    }
    line = (
        f"event throughput: {lines:,} log lines into the Job at {job_rate:,.0f} lines/s, "
        f"x{ratio:.2f} of a bare websockets loop ({bare_rate:,.0f}/s; "
        f"{verdict(targets['ratio_at_least_0.5'], '>= 0.5')}); JobView sent "
        f"{len(stamps)} widget messages in {ms(closed - shown)}, at most {busiest} in any "
        f"second ({verdict(targets['widget_messages_at_most_10_per_s'], '<= 10/s')}), last line "
        f"{'shown' if last_shown else 'NOT shown'}"
    )
    return Figure("event_throughput", line, values, targets)
