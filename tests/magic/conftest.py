"""Fixtures of the magic tests: a recording comm that stands in for the frontend of widgets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import comm
import pytest
from magic_helpers import RecordingComm


@pytest.fixture
def recording_comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    """Widgets created during the test talk to RecordingComms, listed in creation order."""
    created: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made = RecordingComm(**kwargs)
        created.append(made)
        return made

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield created
