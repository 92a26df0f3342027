"""%%linkis and %linkis in an in-process IPython against the embedded gateway on loopback."""

from __future__ import annotations

import getpass
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from magic_helpers import RecordingComm
from waiting import wait_for as wait_until

from linkis_magic import errors
from linkis_magic.config import ENV_VARS
from linkis_magic.magic import LinkisMagics, loaded_magics
from linkis_magic.protocol import JobStatus, decode_exec_id
from linkis_magic.views import JobView, TextView

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings from the developer's machine: no LINKIS_* vars, an empty home."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in [*ENV_VARS.values(), "LINKIS_MAGIC_CONFIG"]:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shell(clean_env: None, recording_comms: list[RecordingComm]) -> Iterator[InteractiveShell]:
    """The IPython shell with the extension loaded and displays captured; unloaded afterwards."""
    ip = InteractiveShell.instance()
    publisher = ip.display_pub
    ip.display_pub = CapturingDisplayPublisher()
    ip.config.pop("LinkisMagic", None)  # %config persists in the shell's config: start clean
    ip.extension_manager.load_extension("linkis_magic")
    yield ip
    ip.extension_manager.unload_extension("linkis_magic")
    ip.display_pub = publisher
    for name in ("df", "df_1", "count", "day", "rows", "greeting"):
        ip.user_ns.pop(name, None)


@pytest.fixture
def ip(shell: InteractiveShell, gateway: Any) -> InteractiveShell:
    """The shell, configured for the session gateway through %config."""
    shell.run_line_magic("config", f"LinkisMagic.gateway = {gateway.url!r}")
    shell.run_line_magic("config", f"LinkisMagic.user = {gateway.user!r}")
    shell.run_line_magic("config", f"LinkisMagic.password = {gateway.password!r}")
    shell.run_line_magic("config", "LinkisMagic.view = 'widget'")
    return shell


def magics(shell: InteractiveShell) -> LinkisMagics:
    found = loaded_magics(shell)
    assert found is not None
    return found


def outputs(shell: InteractiveShell) -> list[dict[str, Any]]:
    publisher = shell.display_pub
    assert isinstance(publisher, CapturingDisplayPublisher)
    return [o["data"] for o in publisher.outputs]


def last_view(shell: InteractiveShell) -> Any:
    views = [o for o in outputs(shell) if "application/vnd.jupyter.widget-view+json" in o]
    assert views, "no widget was displayed"
    return views[-1]


def cell(shell: InteractiveShell, line: str, code: str) -> Any:
    return shell.run_cell_magic("linkis", line, code)


def jobs_of(shell: InteractiveShell) -> list[Any]:
    client = magics(shell).client
    return [] if client is None else list(client.jobs)


# --------------------------------------------------------------------------- extension


def test_load_ext_registers_and_unload_ext_removes(shell: InteractiveShell) -> None:
    manager = shell.magics_manager
    assert "linkis" in manager.magics["line"] and "linkis" in manager.magics["cell"]
    assert "LinkisMagic" in [type(c).__name__ for c in shell.configurables]
    shell.extension_manager.unload_extension("linkis_magic")
    assert "linkis" not in manager.magics["line"] and "linkis" not in manager.magics["cell"]
    assert "LinkisMagic" not in [type(c).__name__ for c in shell.configurables]
    shell.extension_manager.load_extension("linkis_magic")


# --------------------------------------------------------------------------- cells


def test_a_python_cell_returns_its_table_and_the_view_shows_the_job(ip: InteractiveShell) -> None:
    frame = cell(
        ip, "python", "import pandas as pd\npd.DataFrame({'a': [1, 2, 3], 'b': list('xyz')})"
    )

    assert isinstance(frame, pd.DataFrame)
    assert frame["a"].tolist() == [1, 2, 3] and frame["b"].tolist() == ["x", "y", "z"]
    (job,) = jobs_of(ip)
    assert job.status is JobStatus.SUCCEED
    view = magics(ip).last_view
    assert isinstance(view, JobView)
    assert "python / python" in view.header.value
    assert job.exec_id in view.header.value and f"<code>{job.task_id}</code>" in view.header.value
    assert "Succeed" in view.status.value
    assert view.bar.value == 1.0 and view.percent.value == "100%"
    assert view.bar.comm.updates("value")[-1] == 1.0
    assert any("Succeed" in v for v in view.status.comm.updates("value"))
    texts = [o.get("text/plain", "") for o in outputs(ip)]
    assert "table 1: 3 rows × 2 columns" in texts
    publisher = ip.display_pub
    assert isinstance(publisher, CapturingDisplayPublisher)
    updates = [o for o in publisher.outputs if o["update"]]
    assert updates, "the view's display was never updated"
    assert updates[-1]["data"]["text/plain"].startswith(
        f"Linkis python/python execID {job.exec_id}"
    )
    assert ": Succeed (" in updates[-1]["data"]["text/plain"]


def test_variables_come_from_v_then_the_namespace_and_the_code_is_sent_as_written(
    ip: InteractiveShell,
) -> None:
    ip.user_ns.update(count=3, day=date(2026, 12, 1), greeting="from the namespace")
    code = "echo ${greeting} ${count} ${day} ${run_date} '${missing}'"
    cell(ip, "shell -v greeting=hello -v extra=1", code)

    (job,) = jobs_of(ip)
    assert job.code == code
    text = [o["text/plain"] for o in outputs(ip) if "text/plain" in o][-1]
    words = text.split()
    assert words[:3] == ["hello", "3", "2026-12-01"]
    assert words[3].isdigit() and len(words[3]) == 8  # the server's run_date built-in
    assert words[4] == "${missing}"


def test_creator_and_configuration_reach_the_server(ip: InteractiveShell) -> None:
    cell(ip, "python --creator nbtest --runtime wds.linkis.rm.instance=1 --quiet", "1 + 1")
    (job,) = jobs_of(ip)
    assert job.status is JobStatus.SUCCEED
    decoded = decode_exec_id(job.exec_id)
    assert "nbtest" in (decoded.creator or "") + job.exec_id


def test_o_binds_the_first_table_and_the_cell_returns_nothing(ip: InteractiveShell) -> None:
    returned = cell(ip, "python -o df", "import pandas as pd\npd.DataFrame({'n': range(5)})")
    assert returned is None
    assert ip.user_ns["df"]["n"].tolist() == [0, 1, 2, 3, 4]
    assert "df_1" not in ip.user_ns


def test_row_limit_bounds_the_rows_and_the_caption_says_so(ip: InteractiveShell) -> None:
    frame = cell(ip, "python -n 10", "import pandas as pd\npd.DataFrame({'n': range(50)})")
    assert len(frame) == 10
    captions = [o.get("text/plain", "") for o in outputs(ip)]
    assert any(c.startswith("table 1: 10 rows × 1 columns (first 10 rows") for c in captions)


def test_quiet_shows_nothing_and_returns_nothing(ip: InteractiveShell) -> None:
    assert cell(ip, "python --quiet", "import pandas as pd\npd.DataFrame({'n': [1]})") is None
    assert outputs(ip) == []


def test_text_view_prints_the_story(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    cell(ip, "shell --view text", "echo first line; echo second line")
    printed = capsys.readouterr().out
    (job,) = jobs_of(ip)
    assert f"[linkis shell/shell execID {job.exec_id}, taskID {job.task_id}]" in printed
    assert "] Succeed" in printed
    assert isinstance(magics(ip).last_view, TextView)


def test_a_failed_job_raises_job_error_with_its_error_lines_in_the_view(
    ip: InteractiveShell,
) -> None:
    with pytest.raises(errors.JobError) as info:
        cell(ip, "python", "raise ValueError('no such table: sales')")
    assert info.value.status == "Failed"
    assert "no such table: sales" in str(info.value)
    view = magics(ip).last_view
    assert "Failed" in view.status.value and view.bar.bar_style == "danger"
    assert view.log_box.selected_index == 0
    assert "no such table: sales" in view.log.value
    assert "color:#dc3545" in view.log.value


@pytest.mark.timeout(30)
def test_timeout_kills_the_job_and_raises(ip: InteractiveShell) -> None:
    started = time.monotonic()
    with pytest.raises(errors.JobTimeout, match="--timeout 1 s"):
        cell(ip, "python --timeout 1", "import time\ntime.sleep(30)")
    assert time.monotonic() - started < 10
    (job,) = jobs_of(ip)
    assert job.status is JobStatus.CANCELLED
    assert "Cancelled" in magics(ip).last_view.status.value


def test_background_returns_the_job_and_the_view_shows_its_results(ip: InteractiveShell) -> None:
    job = cell(
        ip,
        "python --background",
        "import time, pandas as pd\ntime.sleep(1)\npd.DataFrame({'late': [42]})",
    )
    assert not job.done
    view = magics(ip).last_view
    assert view.cancel.layout.display != "none"
    job.wait(30)
    wait_until(lambda: len(view.results.outputs) == 2, timeout=15)
    caption, table = view.results.outputs
    assert caption["data"]["text/plain"] == "table 1: 1 rows × 1 columns"
    assert "42" in table["data"]["text/plain"]
    assert "Succeed" in view.status.comm.updates("value")[-1]


def test_the_cancel_button_kills_a_background_job(ip: InteractiveShell) -> None:
    job = cell(ip, "python --background", "import time\ntime.sleep(60)")
    view = magics(ip).last_view
    wait_until(lambda: job.status is JobStatus.RUNNING, timeout=20)
    view.cancel.comm.click()
    with pytest.raises(errors.JobCancelled):
        job.wait(10)
    wait_until(lambda: "Cancelled" in view.status.value)


@pytest.mark.parametrize(
    ("line", "code", "fragment"),
    [
        ("python --nope", "1", "unrecognized arguments: --nope"),
        ("python -v novalue", "1", "is not KEY=VALUE"),
        ("python --startup =1", "1", "is not KEY=VALUE"),
        ("python", "   \n  ", "the cell is empty"),
        ("python", "print('${rows}')", "${rows} refers to a list"),
        ("'py thon'", "1", "is not a valid name"),
        ("python -n lots", "1", "is not a row count"),
        ("python --timeout -1", "1", "is not a duration"),
    ],
)
def test_mistakes_raise_usage_error_before_anything_is_sent(
    ip: InteractiveShell, line: str, code: str, fragment: str
) -> None:
    cell(ip, "python --quiet", "1")
    ip.user_ns["rows"] = [1, 2]
    with pytest.raises(UsageError, match=fragment.replace("$", r"\$").replace("{", r"\{")):
        cell(ip, line, code)
    assert len(jobs_of(ip)) == 1


# --------------------------------------------------------------------------- settings


def test_settings_from_env_vars(
    shell: InteractiveShell, gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKIS_GATEWAY", gateway.url)
    monkeypatch.setenv("LINKIS_USER", gateway.user)
    monkeypatch.setenv("LINKIS_TOKEN", gateway.token)
    assert (
        cell(shell, "python --quiet -o df", "import pandas as pd\npd.DataFrame({'x': [1]})") is None
    )
    client = magics(shell).client
    assert client is not None and client.gateway.rstrip("/") == gateway.url.rstrip("/")
    assert shell.user_ns["df"]["x"].tolist() == [1]


def test_settings_from_the_config_file(
    shell: InteractiveShell, gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "linkis.toml"
    path.write_text(
        f'gateway = "{gateway.url}"\nuser = "{gateway.user}"\npassword = "{gateway.password}"\n'
        'default_engine = "shell"\nview = "text"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("LINKIS_MAGIC_CONFIG", str(path))
    cell(shell, "", "echo from the file")
    (job,) = jobs_of(shell)
    assert (job.engine, job.run_type) == ("shell", "shell")
    assert isinstance(magics(shell).last_view, TextView)


def test_config_beats_env_and_a_change_rebuilds_the_client(
    shell: InteractiveShell, gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKIS_GATEWAY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("LINKIS_USER", gateway.user)
    monkeypatch.setenv("LINKIS_PASSWORD", gateway.password)
    shell.run_line_magic("config", f"LinkisMagic.gateway = {gateway.url!r}")
    cell(shell, "shell --quiet", "true")
    first = magics(shell).client
    shell.run_line_magic("config", "LinkisMagic.transport = 'rest'")
    cell(shell, "shell --quiet", "true")
    second = magics(shell).client
    assert second is not first and second is not None
    assert second.transport_in_use == "rest"


def test_config_never_shows_the_password(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("config", "LinkisMagic.password = 'hunter2-secret'")
    shell.run_line_magic("config", "LinkisMagic")
    shown = repr(shell.run_line_magic("config", "LinkisMagic.password"))
    assert "hunter2-secret" not in capsys.readouterr().out + shown


def test_no_gateway_starts_the_embedded_one_and_says_so_in_one_line(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINKIS_MAGIC_DATA_DIR", str(tmp_path / "embedded"))
    cell(shell, "shell --quiet", "echo hi")
    lines = [line for line in capsys.readouterr().out.splitlines() if "embedded gateway" in line]
    assert len(lines) == 1
    assert "http://127.0.0.1:" in lines[0]
    (job,) = jobs_of(shell)
    assert job.status is JobStatus.SUCCEED


# --------------------------------------------------------------------------- %linkis


def test_connect_asks_for_the_password_and_status_tells(
    shell: InteractiveShell,
    gateway: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return gateway.password

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    shell.run_line_magic("linkis", "status")
    assert "not connected yet" in capsys.readouterr().out
    shell.run_line_magic("linkis", f"connect {gateway.url} --user {gateway.user}")
    assert prompts and gateway.user in prompts[0]
    shell.run_line_magic("linkis", "status")
    out = capsys.readouterr().out
    assert f"user {gateway.user}" in out and "connected" in out
    assert gateway.password not in out


def test_connect_with_a_token(
    shell: InteractiveShell, gateway: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic(
        "linkis",
        f"connect {gateway.url} --user {gateway.user} --token {gateway.token} --transport rest",
    )
    out = capsys.readouterr().out
    assert "transport rest" in out and gateway.token not in out
    assert cell(shell, "shell --quiet", "true") is None


def test_jobs_logs_kill_and_attach(
    ip: InteractiveShell, gateway: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell(ip, "shell --quiet", "echo hello-log")
    job = cell(ip, "python --background --quiet", "import time\ntime.sleep(60)")
    wait_until(lambda: job.status is JobStatus.RUNNING, timeout=20)

    table = ip.run_line_magic("linkis", "jobs")
    assert table["execID"].tolist()[-1] == job.exec_id
    assert set(table["status"]) == {"Succeed", "Running"}

    first = jobs_of(ip)[0]
    capsys.readouterr()
    ip.run_line_magic("linkis", f"logs {first.exec_id}")
    assert "hello-log" in capsys.readouterr().out

    from linkis_magic.client import LinkisClient

    other = LinkisClient(gateway=gateway.url, user=gateway.user, password=gateway.password)
    try:
        remote = other.submit(
            "import time\ntime.sleep(60)", engine="python", run_type="python", creator="other"
        )
        wait_until(lambda: remote.status is JobStatus.RUNNING, timeout=20)
        attached = ip.run_line_magic("linkis", f"attach {remote.exec_id} {remote.task_id}")
        assert attached.exec_id == remote.exec_id
        view = magics(ip).last_view
        wait_until(lambda: "Running" in view.status.value)
        ip.run_line_magic("linkis", f"kill {remote.exec_id}")
        assert "Cancelled" in capsys.readouterr().out
        wait_until(lambda: "Cancelled" in view.status.value)
    finally:
        other.close()

    ip.run_line_magic("linkis", f"kill {job.exec_id}")
    assert job.status is JobStatus.CANCELLED
    with pytest.raises(UsageError, match="no job 'nope' in this kernel"):
        ip.run_line_magic("linkis", "logs nope")
    with pytest.raises(UsageError, match="unknown subcommand 'frobnicate'"):
        ip.run_line_magic("linkis", "frobnicate")
    with pytest.raises(UsageError, match="is not a number"):
        ip.run_line_magic("linkis", f"attach {job.exec_id} x")


def test_o_with_several_tables_binds_var_var_1_var_2(shell: InteractiveShell) -> None:
    from magic_helpers import FakeJob

    from linkis_magic.magic import CellOptions
    from linkis_magic.results import ResultSet

    tables = [pd.DataFrame({"t": [i]}) for i in range(3)]
    job = FakeJob(status=JobStatus.SUCCEED)
    job.result_sets = [
        ResultSet(0, "table", tables[0]),
        ResultSet(1, "text", "between"),
        ResultSet(2, "table", tables[1]),
        ResultSet(3, "table", tables[2]),
    ]
    returned = magics(shell)._results(job, CellOptions(output="df"), None)  # type: ignore[arg-type]
    assert returned is None
    assert [shell.user_ns[n]["t"][0] for n in ("df", "df_1", "df_2")] == [0, 1, 2]
    shell.user_ns.pop("df_2")


def test_renders_of_a_chatty_job_are_coalesced(ip: InteractiveShell) -> None:
    code = (
        "import time\nfor i in range(300):\n    print('line', i, flush=True)\n    time.sleep(0.005)"
    )
    job = cell(ip, "python --background", code)
    events: list[float] = []
    job.subscribe(lambda _job, _event: events.append(time.monotonic()))
    view = magics(ip).last_view
    started = time.monotonic()
    job.wait(30)
    wait_until(lambda: not view._throttle.running, timeout=10)
    duration = time.monotonic() - started

    log_updates = view.log.comm.updates("value")
    assert "line 299" in log_updates[-1]
    assert len(events) > 2 * len(log_updates)
    # At most one render per update_interval (0.25 s), the first and the trailing one.
    assert view.renders <= duration / 0.25 + 3


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_spark_sql_cell_shows_its_stages_and_returns_its_table(ip: InteractiveShell) -> None:
    frame = cell(
        ip,
        "spark",
        "select id % 3 as k, count(*) as n from range(0, 3000, 1, 6) group by id % 3 order by k",
    )
    assert frame["k"].tolist() == [0, 1, 2]
    assert frame["n"].tolist() == [1000, 1000, 1000]
    (job,) = jobs_of(ip)
    assert (job.engine, job.run_type) == ("spark", "sql")
    view = magics(ip).last_view
    stage_tables = [v for v in view.stages.comm.updates("value") if "<td>" in v]
    assert stage_tables, "no progressInfo row was ever shown"
    assert "succeeded" in stage_tables[-1]


def test_a_wrong_typed_password_is_asked_again(
    shell: InteractiveShell, gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["wrong-password", gateway.password])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    with pytest.raises(errors.AuthError) as info:
        shell.run_line_magic("linkis", f"connect {gateway.url} --user {gateway.user}")
    assert "wrong-password" not in str(info.value)
    assert magics(shell).client is None
    assert cell(shell, "shell --quiet", "true") is None
    assert magics(shell).client is not None


def test_loading_twice_keeps_one_set_of_magics(shell: InteractiveShell) -> None:
    from linkis_magic import load_ipython_extension

    first = magics(shell)
    load_ipython_extension(shell)
    assert magics(shell) is first
    assert [type(c).__name__ for c in shell.configurables].count("LinkisMagic") == 1
