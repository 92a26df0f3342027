"""jupyter_kernel_test's KernelTests for the Linkis Spark SQL and Linkis Python kernelspecs.

Each kernel runs from kernelspecs installed into a temporary Jupyter directory and talks to the
session's embedded gateway (tests/conftest.py) with text views. KernelTests expects exactly one
``stream`` message with "hello, world" and an error cell with no output but the error, so those two
samples use ``%%local`` and ``--quiet``, and so do the samples of IPython's own features that the
kernel keeps for ``%%local`` cells (inspection, the pager, clear_output). Every other sample runs
on Linkis.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import jupyter_kernel_test
import pytest
from jupyter_kernel_test.msgspec_v5 import validate_message
from kernel_helpers import (
    EXEC_ID,
    LinkisKernelSession,
    RunningCell,
    job_status,
    kernel_env,
)
from waiting import wait_for as wait_until


@pytest.fixture(scope="class")
def linkis_kernel(
    request: pytest.FixtureRequest, gateway: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Start the class's kernel against the session gateway and warm its engine."""
    cls = request.cls
    tmp: Path = tmp_path_factory.mktemp(cls.kernel_name)
    session = LinkisKernelSession(cls.kernel_name, tmp, kernel_env(tmp, gateway))
    try:
        for code in cls.warm_up:
            cell = session.execute(code, timeout=240)
            assert cell.status == "ok", cell.reply
        cls.km, cls.kc, cls.gateway = session.km, session.kc, gateway
        yield
    finally:
        session.shutdown()


class LinkisKernelTests(jupyter_kernel_test.KernelTests):
    """KernelTests whose kernel comes from the ``linkis_kernel`` fixture, not setUpClass."""

    __test__ = False
    warm_up: ClassVar[list[str]] = []

    @classmethod
    def setUpClass(cls) -> None:
        """The fixture starts the kernel (it needs the gateway fixture)."""

    @classmethod
    def tearDownClass(cls) -> None:
        """The fixture stops the kernel."""


# Defined before the Spark SQL tests, so it runs first: their interrupt test may cost the
# engine process (the gateway kills it when Spark is slow to cancel) and a new one is slow.
@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pyspark_kernel_runs_python_on_the_spark_session(gateway: Any, tmp_path: Path) -> None:
    session = LinkisKernelSession("linkis_pyspark", tmp_path, kernel_env(tmp_path, gateway))
    try:
        cell = session.execute("print(spark.range(5).count())", timeout=240)
    finally:
        session.shutdown()

    assert cell.status == "ok", cell.reply
    assert "5" in "".join(cell.data("display_data"))


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("linkis_kernel")
class SparkSqlKernelTests(LinkisKernelTests):
    __test__ = True
    kernel_name = "linkis_spark_sql"
    language_name = "sql"
    file_extension = ".sql"
    # A Spark session takes 10-20 s to start; KernelTests waits 15 s per cell.
    warm_up: ClassVar[list[str]] = ["select 1 as warm"]

    code_hello_world = "%%local\nprint('hello, world')"
    code_inspect_sample = "%%local\nprint"
    code_page_something = "%%local\nprint?"
    code_clear_output = "%%local\nfrom IPython.display import clear_output\nclear_output()"
    code_stderr = "%%local\nimport sys\nprint('to stderr', file=sys.stderr)"
    code_generate_error = "%%linkis spark sql --quiet\nselect * from no_such_table_kt"
    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {"code": "select 1 + 1 as two", "result": "   two\n0    2"},
    ]
    code_display_data: ClassVar[list[dict[str, str]]] = [
        {"code": "select 'a' as letter union all select 'b'", "mime": "text/plain"},
    ]
    code_history_pattern = "select 1 + 1*"
    supported_history_operations = ("tail", "range", "search")
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "sel", "matches": {"select"}},
        {"text": "SELECT * FR", "matches": {"FROM", "FROM_UNIXTIME"}},
        {"text": "select 1 ", "matches": set()},
        {"text": "%linkis", "matches": {"%linkis", "%%linkis"}},
    ]
    complete_code_samples: ClassVar[list[str]] = [
        "select 1;",
        "select 1\n",
        "-- only a comment",
        "select ';' as semicolon;",
    ]
    incomplete_code_samples: ClassVar[list[str]] = [
        "select 1",
        "select 'abc",
        "select (1,\n",
        "select 1 /* open",
    ]
    invalid_code_samples: ClassVar[list[str]] = ["select 1);"]

    def test_interrupt_cancels_the_running_query_on_the_server(self) -> None:
        self.flush_channels()
        cell = RunningCell(self.kc, self.kc.execute("select sum(id * 2) from range(1000000000000)"))

        def running(c: RunningCell) -> bool:
            return "Running" in c.text() and EXEC_ID.search(c.text()) is not None

        cell.read_until(running, timeout=60)
        exec_id = EXEC_ID.search(cell.text()).group(1)  # type: ignore[union-attr]
        self.km.interrupt_kernel()

        assert wait_until(lambda: job_status(self.gateway, exec_id) == "Cancelled", timeout=10)
        done = cell.finish(timeout=30)
        self.assertEqual(done.reply["ename"], "KeyboardInterrupt")

    def test_completion_and_inspection_of_linkis_cells_never_fail(self) -> None:
        self.flush_channels()
        for code, cursor in [("select col", 10), ("", 0), ("select 'é", 9), ("x", 99)]:
            msg_id = self.kc.complete(code, cursor)
            reply = self.get_non_kernel_info_reply(timeout=15)
            validate_message(reply, "complete_reply", msg_id)
            self.assertEqual(reply["content"]["status"], "ok")  # type: ignore[index]
            msg_id = self.kc.inspect(code, cursor)
            reply = self.get_non_kernel_info_reply(timeout=15)
            validate_message(reply, "inspect_reply", msg_id)
            self.assertEqual(reply["content"]["status"], "ok")  # type: ignore[index]
            self.assertFalse(reply["content"]["found"])  # type: ignore[index]

    def test_kernel_info_names_the_linkis_kernel(self) -> None:
        self.flush_channels()
        msg_id = self.kc.kernel_info()
        reply = self.kc.get_shell_msg(timeout=15)
        validate_message(reply, "kernel_info_reply", msg_id)
        content = reply["content"]
        self.assertEqual(content["implementation"], "linkis_magic")
        self.assertIn("spark sql", content["banner"])
        self.assertEqual(content["language_info"]["mimetype"], "text/x-sql")
        self.assertEqual(content["help_links"][0]["text"], "Apache Linkis")


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("linkis_kernel")
class PythonKernelTests(LinkisKernelTests):
    __test__ = True
    kernel_name = "linkis_python"
    language_name = "python"
    file_extension = ".py"
    warm_up: ClassVar[list[str]] = ["warm = 1"]

    code_hello_world = "%%local\nprint('hello, world')"
    code_inspect_sample = "%%local\nprint"
    code_page_something = "%%local\nprint?"
    code_clear_output = "%%local\nfrom IPython.display import clear_output\nclear_output()"
    code_stderr = "%%local\nimport sys\nprint('to stderr', file=sys.stderr)"
    code_generate_error = "%%linkis python --quiet\nraise ValueError('no good')"
    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {
            "code": "import pandas as pd\npd.DataFrame({'x': [1, 2]})",
            "result": "   x\n0  1\n1  2",
        },
        {"code": "%%local\n6 * 7", "result": "42"},
    ]
    code_display_data: ClassVar[list[dict[str, str]]] = [
        {"code": "print('printed on the engine')", "mime": "text/plain"},
    ]
    code_history_pattern = "import pandas*"
    supported_history_operations = ("tail", "range", "search")
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "pri", "matches": {"print"}},
        {"text": "%%loc", "matches": {"%%local"}},
    ]
    complete_code_samples: ClassVar[list[str]] = ["print(1)", "x = 1\n", "import os"]
    incomplete_code_samples: ClassVar[list[str]] = ["for i in range(3):", "print(1,", "x = '''"]
    invalid_code_samples: ClassVar[list[str]] = ["1 = 2", "print(1))"]
