"""The gateway's access log: ordinary 4xx answers stay at DEBUG, out of a notebook's output."""

from __future__ import annotations

import logging

import httpx
import pytest

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(30)


def test_linkis_style_4xx_answers_log_no_warning(gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    with httpx.Client(base_url=gateway.url + p.REST_PREFIX) as http:
        unknown = http.get("/entrance/exec_id018014linkis-cg-entrance127.0.0.1:1IDE_a_b_9/status")
        anonymous = http.get("/jobhistory/1/get")

    assert unknown.status_code >= 400 and anonymous.status_code == 401
    access = [r for r in caplog.records if r.name.endswith("access")]
    assert any("/jobhistory/1/get" in r.getMessage() for r in access)
    assert all(r.levelno < logging.WARNING for r in access)
