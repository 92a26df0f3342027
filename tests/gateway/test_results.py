"""Result sets: paging with page and pageSize, the row limit, text, table, picture and html."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket

from linkis_magic.gateway import resultsets

pytestmark = pytest.mark.timeout(60)


async def result_paths(ws: RawSocket, http: httpx.Client, code: str) -> list[str]:
    _e, task_id = await ws.execute(code)
    assert await ws.wait_status(task_id) == "Succeed", ws.job_log(task_id)
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    tree = http.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
    return [c["path"] for c in tree.json()["data"]["dirFileTrees"]["children"]]


def open_file(http: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    return http.get("/filesystem/openFile", params={"path": path, **params}).json()


async def test_table_pages(ws: RawSocket, http: httpx.Client) -> None:
    code = "import pandas as pd\npd.DataFrame({'n': range(12001), 's': ['v'] * 12001})"
    [path] = await result_paths(ws, http, code)

    first = open_file(http, path)["data"]
    assert first["page"] == 1 and len(first["fileContent"]) == 5000
    assert first["fileContent"][0] == ["0", "v"] and first["totalLine"] == 5000
    rows = []
    page = 1
    while True:
        data = open_file(http, path, page=page, pageSize=5000)["data"]
        rows.extend(data["fileContent"])
        if len(data["fileContent"]) < 5000:
            break
        page += 1
    assert page == 3 and [int(r[0]) for r in rows] == list(range(12001))
    beyond = open_file(http, path, page=99, pageSize=5000)["data"]
    assert beyond["fileContent"] == [] and beyond["metadata"][0]["columnName"] == "n"
    small = open_file(http, path, page=4, pageSize=7)["data"]["fileContent"]
    assert [r[0] for r in small] == [str(n) for n in range(21, 28)]


async def test_page_size_over_the_limit_is_refused(ws: RawSocket, http: httpx.Client) -> None:
    [path] = await result_paths(ws, http, "print('x')")
    reply = open_file(http, path, pageSize=100_001)
    assert reply["status"] == 1 and reply["data"]["errorMsg"]["errCode"] == 80034
    assert open_file(http, path, pageSize=100_000)["status"] == 0
    assert open_file(http, path, page=0)["status"] == 1
    assert open_file(http, path, page="x")["status"] == 1
    assert open_file(http, path + "-missing")["status"] == 1


async def test_null_value_option(ws: RawSocket, http: httpx.Client) -> None:
    [path] = await result_paths(ws, http, "import pandas as pd\npd.DataFrame({'a': [None, 'x']})")
    assert open_file(http, path)["data"]["fileContent"] == [["NULL"], ["x"]]
    assert open_file(http, path, nullValue="")["data"]["fileContent"] == [[""], ["x"]]


async def test_picture_and_html_results(ws: RawSocket, http: httpx.Client) -> None:
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nfig"
    )
    [path] = await result_paths(ws, http, code)
    picture = open_file(http, path)["data"]
    assert picture["type"] == "4"
    assert base64.b64decode(picture["fileContent"][0][0]).startswith(b"\x89PNG")

    code = "class Page:\n    def _repr_html_(self):\n        return '<b>bold</b>'\nPage()"
    [path] = await result_paths(ws, http, code)
    html = open_file(http, path)["data"]
    assert html["type"] == "5" and html["fileContent"] == [["<b>bold</b>"]]


async def test_row_limit_cuts_tables(make_gateway: Any, login: Any) -> None:
    from gateway_testing import V1, open_socket

    from linkis_magic import protocol as p

    gw = make_gateway(result_row_limit=10)
    ticket = login(gw.url, gw.user, gw.password)
    sock = await open_socket(gw.ws_url, ticket)
    try:
        with httpx.Client(base_url=gw.url + V1, cookies={p.TICKET_COOKIE: ticket}) as client:
            code = "import pandas as pd\npd.DataFrame({'n': range(25)})"
            [path] = await result_paths(sock, client, code)
            assert len(open_file(client, path)["data"]["fileContent"]) == 10
        warn = "".join(f["data"]["log"][1] for f in sock.frames if f["method"].endswith("/log"))
        assert "cut at 10 rows" in warn
    finally:
        await sock.conn.close()


def test_reading_a_page_does_not_read_the_whole_file(tmp_path: Path) -> None:
    rows = 100_000
    results = resultsets.ResultDir(tmp_path)
    metadata = [{"columnName": "n", "dataType": "bigint", "comment": "NULL"}]
    results.write_table(metadata, ([i, f"row {i}"] for i in range(rows)), limit=rows)
    path = tmp_path / "_0.dolphin"
    assert resultsets.row_count(path) == rows

    started = time.perf_counter()
    first = resultsets.read_page(path, 1, 100)
    first_time = time.perf_counter() - started
    started = time.perf_counter()
    last = resultsets.read_page(path, rows // 100, 100)
    last_time = time.perf_counter() - started
    assert first.rows[0] == ["0", "row 0"]
    assert last.rows[-1] == [str(rows - 1), f"row {rows - 1}"]
    assert last_time < max(first_time * 20, 0.05)
