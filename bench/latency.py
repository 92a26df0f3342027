"""Push latency: how long after the gateway emits an event the Job sees it, against REST polling.

One python job prints numbered lines at a steady pace, each with the engine's clock
(``time.monotonic()``, which is CLOCK_MONOTONIC and so shared by every process on the machine).
It starts only once all its watchers follow it:

- the client's Job (a ``LinkisClient`` in this process), through pushes: for each event, the
  gateway's emit stamp (``protocol.EMIT_STAMP_KEY``) against the moment its subscriber runs, and
  for each line, the engine's print time against the same moment;
- a bare ``websockets`` loop in its own process (``bench.bare_reader``): the floor;
- two REST pollers in their own processes (``bench.poller``) reading ``/status`` and
  ``/log?fromLine=`` every 1 s (as linkis-python-sdk polls) and every 5 s (as Linkis's web
  console polls): for each line, when the poll that brought it returned.

The gateway pushes each line as it arrives for this run (log coalescing window 0) so that every
line is an event; a second, shorter job measures print -> Job with the default window.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from bench.harness import (
    BenchGateway,
    Child,
    Figure,
    Size,
    bare_reader,
    go_snippet,
    median,
    ms,
    percentile,
    poller,
    verdict,
    wait_for,
)
from bench.poller import printed_lines
from linkis_magic import protocol as p
from linkis_magic.gateway.jobs import GatewayOptions

TARGET_MEDIAN = 0.002

JOB_CODE = """\
import os, time
i = 0
while i < {lines} and not os.path.exists({stop!r}):
    print("L", i, repr(time.monotonic()))
    i += 1
    time.sleep({gap})
"""


@dataclass
class PushWatcher:
    """The Job's subscriber: emit->seen per pushed event, print->seen per line however it came."""

    emit_to_seen: list[float] = field(default_factory=list)
    print_to_seen: dict[int, float] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)

    def __call__(self, job: Any, event: Any) -> None:
        now = time.monotonic()
        if isinstance(event, p.LogLines):  # pushed, or read over REST to fill a gap
            for number, printed in printed_lines(event.all):
                self.print_to_seen.setdefault(number, now - printed)
        emitted = getattr(event, "emitted", None)
        if emitted is None:
            return
        self.emit_to_seen.append(now - emitted)
        kind = type(event).__name__
        self.kinds[kind] = self.kinds.get(kind, 0) + 1


class FrameTimer:
    """Instrumentation: when each frame reaches the client's handler, and how long it takes.

    Wraps the client's frame handler on this one client instance, so that emit -> Job splits
    into emit -> the client has the frame (transport, scheduling) and the client's own handling.
    """

    _STAMP = re.compile(r'"' + p.EMIT_STAMP_KEY + r'":\s*([0-9.e+-]+)')

    def __init__(self, client: Any) -> None:
        self.arrival: list[float] = []
        self.handling: list[float] = []
        inner = client.async_client
        handler = inner._on_frame

        def timed(message: str | bytes) -> None:
            started = time.monotonic()
            handler(message)
            done = time.monotonic()
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            stamp = self._STAMP.search(text)
            if stamp:
                self.arrival.append(started - float(stamp[1]))
                self.handling.append(done - started)

        inner._on_frame = timed


@dataclass
class Run:
    """One followed job: the Job's watcher, the pollers' and the bare reader's summaries."""

    push: PushWatcher
    polls: dict[float, dict[str, Any]]
    bare: dict[str, Any] | None


def follow(
    gw: BenchGateway,
    client: Any,
    lines: int,
    gap: float,
    cadences: tuple[float, ...] = (),
    bare: bool = False,
    events: int = 0,
) -> Run:
    """Run the printing job with every watcher ready before its first line.

    The job prints ``lines`` lines, or with ``events`` set, prints until the Job has seen that
    many push events (``50 * events`` lines at most).
    """
    go = gw.data_dir / f"go-{time.monotonic_ns()}"
    stop = gw.data_dir / f"stop-{time.monotonic_ns()}"
    limit = events * 50 if events else lines
    watcher = PushWatcher()
    code = go_snippet(go) + JOB_CODE.format(lines=limit, gap=gap, stop=str(stop))
    job = client.submit(code, engine="python")
    job.subscribe(watcher)
    wait_for(lambda: job.exec_id is not None or job.done, 30, "the execID")
    children: dict[float, Child] = {}
    reader = None
    try:
        reader = bare_reader(gw, job.exec_id) if bare else None
        for cadence in cadences:
            children[cadence] = poller(gw, job.exec_id, cadence)
        go.touch()
        deadline = limit * gap * 20 + 60
        if events:
            wait_for(lambda: len(watcher.emit_to_seen) >= events or job.done, deadline, "events")
            stop.touch()
        job.wait(timeout=deadline)
        polls = {c: child.result(max(cadences) * 3 + 60) for c, child in children.items()}
        return Run(watcher, polls, reader.result() if reader else None)
    finally:
        go.touch()  # a job left waiting would hold the engine for a minute
        stop.touch()
        for child in [*children.values(), *([reader] if reader else [])]:
            child.close()


def run(gw: BenchGateway, size: Size) -> Figure:
    client = gw.client()
    try:
        client.submit("0", engine="python").wait(timeout=120)  # the engine process is warm
        timer = FrameTimer(client)
        gw.set_options(log_push_interval=0.0)
        try:
            main = follow(
                gw,
                client,
                size.latency_events,
                size.latency_gap,
                size.poll_cadences,
                bare=True,
                events=size.latency_events,
            )
        finally:
            gw.set_options(log_push_interval=GatewayOptions().log_push_interval)
        arrival, handling = list(timer.arrival), list(timer.handling)
        coalesced = follow(gw, client, size.default_coalescing_lines, size.latency_gap)
    finally:
        client.close()
    return _figure(main, coalesced.push, arrival, handling)


def _figure(
    main: Run, coalesced: PushWatcher, arrival: list[float], handling: list[float]
) -> Figure:
    watcher = main.push
    assert main.bare is not None
    bare = main.bare["emit_to_recv"]
    emit = watcher.emit_to_seen
    push_print = list(watcher.print_to_seen.values())
    default_print = list(coalesced.print_to_seen.values())
    window = GatewayOptions().log_push_interval
    values: dict[str, Any] = {
        "events": len(emit),
        "event_kinds": watcher.kinds,
        "lines_seen_by_job": len(watcher.print_to_seen),
        "emit_to_job_median_s": median(emit),
        "emit_to_job_p99_s": percentile(emit, 0.99),
        "emit_to_job_max_s": max(emit, default=float("nan")),
        "bare_websockets_emit_to_recv_median_s": median(bare),
        "bare_websockets_emit_to_recv_p99_s": percentile(bare, 0.99),
        "bare_websockets_frames": main.bare["frames"],
        "emit_to_client_handler_median_s": median(arrival),
        "client_handling_median_s": median(handling),
        "client_handling_p99_s": percentile(handling, 0.99),
        "print_to_job_median_s": median(push_print),
        "print_to_job_p99_s": percentile(push_print, 0.99),
        "default_coalescing": {
            "log_push_interval_s": window,
            "lines": len(default_print),
            "print_to_job_median_s": median(default_print),
            "print_to_job_p99_s": percentile(default_print, 0.99),
        },
        "polling": [],
    }
    push_median = median(push_print)
    parts = []
    for cadence, poll in main.polls.items():
        seen = list(poll["seen"].values())
        values["polling"].append(
            {
                "cadence_s": cadence,
                "lines_seen": len(seen),
                "polls": poll["polls"],
                "print_to_visible_median_s": median(seen),
                "print_to_visible_p99_s": percentile(seen, 0.99),
                "analytic_median_s": cadence / 2,
                "analytic_p99_s": cadence * 0.99,
                "ratio_to_push_median": median(seen) / push_median,
            }
        )
        parts.append(f"every {cadence:g} s {ms(median(seen))} (x{median(seen) / push_median:,.0f})")
    met = median(emit) < TARGET_MEDIAN
    line = (
        f"push latency: gateway emit -> Job median {ms(median(emit))}, p99 "
        f"{ms(percentile(emit, 0.99))} over {len(emit):,} events ({verdict(met, 'median < 2 ms')}"
        f"; a bare websockets loop: median {ms(median(bare))}); engine print -> Job median "
        f"{ms(push_median)} ({ms(median(default_print))} with the default {window * 1000:g} ms "
        f"log coalescing); REST polling, print -> visible median: {', '.join(parts)}"
    )
    return Figure("push_latency", line, values, {"median_under_2ms": met})
