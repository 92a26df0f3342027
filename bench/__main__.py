"""``python -m bench``: run every benchmark against one gateway subprocess, print one line per
figure, write bench/results.json.

Options: ``--size full|tiny`` (default full), ``--only NAME`` (repeatable), ``--out PATH``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import concurrency, latency, overhead, throughput, transfer
from bench.harness import SIZES, BenchGateway, Figure, Size

BENCHMARKS: dict[str, Callable[[BenchGateway, Size], Figure]] = {
    "push_latency": latency.run,
    "event_throughput": throughput.run,
    "result_transfer": transfer.run,
    "cell_overhead": overhead.run,
    "concurrency": concurrency.run,
}

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


def run_all(size: Size, names: list[str], out: Path | None) -> dict[str, Any]:
    """Run the named benchmarks; print each figure's line; return (and write) the results."""
    report: dict[str, Any] = {
        "size": size.name,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": list(os.getloadavg()),
        },
        "figures": {},
        "errors": {},
    }
    started = time.monotonic()
    with BenchGateway() as gw:
        for name in names:
            began = time.monotonic()
            try:
                figure = BENCHMARKS[name](gw, size)
            except Exception as exc:
                report["errors"][name] = traceback.format_exc()
                print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                continue
            entry = figure.as_json()
            entry["seconds"] = round(time.monotonic() - began, 2)
            report["figures"][name] = entry
            print(figure.line, flush=True)
    report["machine"]["load_after"] = list(os.getloadavg())
    report["seconds"] = round(time.monotonic() - started, 2)
    if out is not None:
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), default=[])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    names = args.only or list(BENCHMARKS)
    report = run_all(SIZES[args.size], names, args.out)
    missed = [n for n, f in report["figures"].items() if not f["met"]]
    print(
        f"{len(report['figures'])} of {len(names)} benchmarks ran in {report['seconds']:.0f} s"
        f"; targets missed: {', '.join(missed) or 'none'}; results in {args.out}",
        flush=True,
    )
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
