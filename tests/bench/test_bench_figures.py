"""Each benchmark once at the tiny size: it runs and its figures are sane. No time is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import concurrency, latency, overhead, throughput, transfer
from bench.harness import REPO, TINY, BenchGateway, Figure, percentile
from bench.throughput import max_in_window

pytestmark = pytest.mark.timeout(240)


def positive(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def check_line(figure: Figure, prefix: str) -> None:
    assert figure.line.startswith(prefix)
    assert "\n" not in figure.line
    assert set(figure.targets) and all(isinstance(v, bool) for v in figure.targets.values())
    json.dumps(figure.as_json())


def test_percentiles_interpolate() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.99) == pytest.approx(9.9)
    assert math.isnan(percentile([], 0.5))
    assert max_in_window([0.0, 0.5, 0.9, 1.2, 3.0], 1.0) == 3


def test_push_latency(bench_gateway: BenchGateway) -> None:
    figure = latency.run(bench_gateway, TINY)
    check_line(figure, "push latency:")
    values = figure.values
    assert values["events"] >= TINY.latency_events
    assert values["event_kinds"]["LogLines"] > 0 and values["event_kinds"]["StatusChanged"] > 0
    for key in (
        "emit_to_job_median_s",
        "print_to_job_median_s",
        "bare_websockets_emit_to_recv_median_s",
    ):
        assert positive(values[key]), key
    assert values["emit_to_job_p99_s"] >= values["emit_to_job_median_s"]
    assert positive(values["default_coalescing"]["print_to_job_median_s"])
    lines = values["lines_seen_by_job"]
    assert lines > 0
    for poller, cadence in zip(values["polling"], TINY.poll_cadences, strict=True):
        assert poller["cadence_s"] == cadence
        assert poller["lines_seen"] >= lines  # a poller reads every line the job printed
        assert poller["polls"] >= 2
        assert positive(poller["print_to_visible_median_s"])


def test_event_throughput(bench_gateway: BenchGateway) -> None:
    figure = throughput.run(bench_gateway, TINY)
    check_line(figure, "event throughput:")
    values = figure.values
    assert values["job_lines_held"] >= TINY.throughput_lines
    assert positive(values["job_lines_per_s"]) and positive(values["bare_websockets_lines_per_s"])
    assert positive(values["ratio"])
    assert values["push_frames"] >= 1
    assert values["widget_messages"] > 0 and values["view_renders"] > 0
    assert values["last_line_shown"] is True
    assert figure.targets["last_line_shown"]


def test_result_transfer(bench_gateway: BenchGateway) -> None:
    figure = transfer.run(bench_gateway, TINY)
    check_line(figure, "result transfer:")
    values = figure.values
    assert values["rows"] == TINY.transfer_rows
    assert values["columns"] == [
        "id:Int64",
        "score:float64",
        "name:str",
        "active:boolean",
        "day:datetime64[us]",
        "amount:object",
    ]
    assert values["pages"] == TINY.transfer_rows // values["page_size"] + 1
    for key in ("time_ratio", "memory_ratio", "frame_bytes", "client_peak_bytes"):
        assert positive(values[key]), key
    assert len(values["client_s"]) == len(values["floor_s"]) == transfer.REPEATS


def test_cell_overhead(bench_gateway: BenchGateway) -> None:
    figure = overhead.run(bench_gateway, TINY)
    check_line(figure, "per-cell overhead:")
    values = figure.values
    assert len(values["magic_walls_s"]) == len(values["bare_walls_s"]) == TINY.overhead_cells
    assert positive(values["engine_median_s"]) or values["engine_median_s"] == 0
    assert values["magic_wall_median_s"] > values["magic_minus_engine_median_s"] > 0
    assert values["bare_wall_median_s"] > values["bare_minus_engine_median_s"] > 0
    assert math.isfinite(values["extra_s"])


def test_concurrency(bench_gateway: BenchGateway) -> None:
    figure = concurrency.run(bench_gateway, TINY)
    check_line(figure, "concurrency:")
    values = figure.values
    assert values["problems"] == []
    assert figure.targets["all_finish_no_crossed_events"]
    assert values["events_checked_at_once"] >= 3 * TINY.concurrency_jobs
    assert positive(values["sequence_s"]) and positive(values["at_once_s"])


def test_python_m_bench_prints_a_line_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--only", "concurrency", "--out", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("concurrency: ")
    assert lines[-1].startswith("1 of 1 benchmarks ran")
    report = json.loads(out.read_text())
    assert report["size"] == "tiny"
    assert report["figures"]["concurrency"]["line"] == lines[0]
    assert report["errors"] == {}
