"""Fixtures of the benchmark tests: the bench package importable, one bench gateway per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.harness import BenchGateway  # noqa: E402


@pytest.fixture(scope="module")
def bench_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchGateway]:
    """The benchmarks' gateway subprocess, on a tmp data dir."""
    with BenchGateway(tmp_path_factory.mktemp("bench-gateway")) as gw:
        yield gw
