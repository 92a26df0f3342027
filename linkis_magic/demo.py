"""The notebook demo and the lab launcher behind ``make demo`` and ``make lab``.

``run_demo`` starts an embedded gateway, executes a notebook headless with nbclient against it and
prints what a user would look at; ``run_lab`` serves JupyterLab on loopback with kernels that talk
to one shared gateway. nbclient and JupyterLab come with the ``dev`` extra and load lazily.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
QUICKSTART = NOTEBOOKS_DIR / "01-quickstart.ipynb"
# In a clone the demo writes under build/ (ignored by git); installed from a wheel, under the cwd.
IN_CLONE = NOTEBOOKS_DIR.is_dir()
DEMO_OUTPUT = REPO_ROOT / "build" / "demo" if IN_CLONE else Path("linkis-magic-demo")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Lines of a table's text/plain form to print (a header and its first rows).
TABLE_HEAD_LINES = 8
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t]+")
_PERCENT = re.compile(r"^\d+ ?%$")


@dataclass(frozen=True)
class Gateway:
    """Where a gateway is and who logs in to it, as the env vars the magic and the kernel read."""

    url: str
    user: str
    password: str

    def env(self) -> dict[str, str]:
        """LINKIS_GATEWAY, LINKIS_USER and LINKIS_PASSWORD for this gateway."""
        return {
            "LINKIS_GATEWAY": self.url,
            "LINKIS_USER": self.user,
            "LINKIS_PASSWORD": self.password,
        }

    def __repr__(self) -> str:
        return f"Gateway(url={self.url!r}, user={self.user!r}, password=***)"


@contextmanager
def embedded_gateway(data_dir: Path, user: str = "demo", **options: Any) -> Iterator[Gateway]:
    """An embedded gateway on a free loopback port with ``user`` and a fresh random password."""
    from linkis_magic.gateway.app import GatewayServer

    password = secrets.token_urlsafe(16)
    server = GatewayServer(host="127.0.0.1", port=0, data_dir=data_dir, **options)
    server.auth.add_user(user, password=password)
    server.start()
    try:
        yield Gateway(url=server.url, user=user, password=password)
    finally:
        server.stop()


def kernel_env(gateway: Gateway, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a kernel that should use ``gateway`` (and no other settings)."""
    env = dict(os.environ if base is None else base)
    env.pop("LINKIS_TOKEN", None)  # a token would win over the password
    env.update(gateway.env())
    return env


def execute_notebook(
    path: Path,
    env: Mapping[str, str],
    *,
    timeout: int = 600,
    kernel_name: str | None = None,
    kernel_log: Path | None = None,
) -> Any:
    """Execute the notebook at ``path`` in a fresh kernel started with ``env``.

    Returns the executed notebook (nbformat's NotebookNode), with the widgets' final state in its
    metadata. Raises nbclient's CellExecutionError when a cell fails; the notebook as executed so
    far is then on the exception as ``notebook``. The kernel's own stderr goes to ``kernel_log``
    when given.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    name = kernel_name or notebook.metadata.get("kernelspec", {}).get("name") or "python3"
    client = NotebookClient(
        notebook,
        kernel_name=name,
        timeout=timeout,
        startup_timeout=120,
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    with contextlib.ExitStack() as stack:
        launch: dict[str, Any] = {"env": dict(env)}
        if kernel_log is not None:
            launch["stderr"] = stack.enter_context(kernel_log.open("ab"))
        try:
            client.execute(**launch)
        except CellExecutionError as exc:
            exc.notebook = notebook  # type: ignore[attr-defined]
            raise
    return notebook


# --------------------------------------------------------------------------- what a user sees


def summarize(notebook: Any) -> str:
    """What a user looks at in an executed notebook, as text.

    For each code cell: its first line, the live view's final state (status, progress) as its
    widgets hold it, printed text, and the head of each table.
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    blocks = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        lines = [f"[{number}] {cell.source.strip().splitlines()[0]}"]
        for output in cell.get("outputs", []):
            lines.extend("    " + line for line in _output_lines(output, state))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _output_lines(output: Mapping[str, Any], state: Mapping[str, Any]) -> list[str]:
    kind = output.get("output_type")
    if kind == "stream":
        return str(output.get("text", "")).rstrip().splitlines()
    if kind == "error":
        return [f"ERROR {output.get('ename')}: {output.get('evalue')}"]
    data = output.get("data", {})
    if WIDGET_VIEW in data:
        return widget_lines(str(data[WIDGET_VIEW].get("model_id", "")), state)
    if "image/png" in data:
        return ["(a PNG image: the plot)"]
    text = str(data.get("text/plain", "")).rstrip()
    if not text:
        return []
    lines = text.splitlines()
    if len(lines) > TABLE_HEAD_LINES:
        lines = [*lines[:TABLE_HEAD_LINES], f"... ({len(lines) - TABLE_HEAD_LINES} more lines)"]
    return lines


def widget_lines(model_id: str, state: Mapping[str, Any]) -> list[str]:
    """The text a widget tree shows, in order: HTML and labels as text, progress as a percent.

    A log (preformatted text) is cut to its line count and its last line.
    """
    lines: list[str] = []
    for model in _walk(model_id, state, set()):
        name = model.get("model_name", "")
        values = model.get("state", {})
        if name == "FloatProgressModel":
            top = float(values.get("max") or 1.0)
            lines.append(f"progress bar {float(values.get('value') or 0.0) / top:.0%}")
        elif name in ("HTMLModel", "LabelModel", "HTMLMathModel"):
            text = _visible_text(str(values.get("value", "")))
            if not (
                lines and lines[-1].startswith("progress bar") and _PERCENT.match(" ".join(text))
            ):
                lines.extend(text)
        elif name == "AccordionModel":
            lines.extend(f"[{title}]" for title in values.get("titles", []) if title)
    return lines


def _walk(model_id: str, state: Mapping[str, Any], seen: set[str]) -> Iterator[Mapping[str, Any]]:
    if model_id in seen or model_id not in state:
        return
    seen.add(model_id)
    model = state[model_id]
    values = model.get("state", {})
    if values.get("layout") and _hidden(str(values["layout"]), state):
        return
    yield model
    for child in values.get("children", []):
        yield from _walk(str(child).removeprefix("IPY_MODEL_"), state, seen)


def _hidden(layout_ref: str, state: Mapping[str, Any]) -> bool:
    layout = state.get(layout_ref.removeprefix("IPY_MODEL_"), {}).get("state", {})
    return layout.get("display") == "none"


def _visible_text(markup: str) -> list[str]:
    text = html.unescape(_TAG.sub(" ", markup.replace("</tr>", "\n")))
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if "<pre" in markup and len(lines) > 1:  # a log: its size and where it ended
        return [f"({len(lines)} lines, the last: {lines[-1]})"]
    if len(lines) > TABLE_HEAD_LINES:
        return [*lines[:TABLE_HEAD_LINES], f"... ({len(lines) - TABLE_HEAD_LINES} more lines)"]
    return lines


# --------------------------------------------------------------------------- make demo


def run_demo(
    notebook: Path = QUICKSTART, output_dir: Path = DEMO_OUTPUT, timeout: int = 600
) -> int:
    """Execute ``notebook`` against a fresh embedded gateway and print what it shows.

    Returns 0 when every cell ran, 1 when one failed, 2 when it cannot start (no such notebook,
    no nbclient). The executed notebook is written to ``output_dir`` either way.
    """
    try:
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        print("the demo runs notebooks with nbclient: pip install nbclient", file=sys.stderr)
        return 2
    if not notebook.is_file():
        print(
            f"no notebook at {notebook}: pass the path of one (the demo notebooks are in the "
            "notebooks/ folder of the linkis-magic repository)",
            file=sys.stderr,
        )
        return 2
    # The client reads /progress before a job has any, which Linkis answers with HTTP 400.
    logging.getLogger("tornado.access").setLevel(logging.ERROR)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / notebook.name
    kernel_log = output_dir / "kernel.log"
    kernel_log.unlink(missing_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="linkis-magic-demo-") as tmp,
        embedded_gateway(Path(tmp) / "gateway") as gateway,
    ):
        print(f"Embedded Linkis gateway on {gateway.url} (user {gateway.user})", flush=True)
        print(f"Executing {notebook} headless with nbclient ...", flush=True)
        try:
            executed = execute_notebook(
                notebook, kernel_env(gateway), timeout=timeout, kernel_log=kernel_log
            )
        except CellExecutionError as exc:
            partial = getattr(exc, "notebook", None)
            _write(partial, target)
            if partial is not None:
                print(summarize(partial), flush=True)
            print(
                f"\nA cell failed; the notebook as executed is {target}, the kernel's log "
                f"{kernel_log}\n{exc}",
                file=sys.stderr,
            )
            return 1
    _write(executed, target)
    print(summarize(executed))
    print(f"\nEvery cell ran. The executed notebook is {target}; `make lab` opens the notebooks")
    return 0


def _write(notebook: Any, target: Path) -> None:
    if notebook is None:
        return
    import nbformat

    nbformat.write(notebook, target)


# --------------------------------------------------------------------------- make lab


def lab_command(root_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    """The command that serves JupyterLab on 127.0.0.1 from ``root_dir``."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    return [*command, *extra]


def run_lab(
    root_dir: Path | None = None, data_dir: Path | None = None, extra: Sequence[str] = ()
) -> int:
    """Serve JupyterLab on loopback; its kernels share one gateway.

    With LINKIS_GATEWAY set, the kernels use that gateway as configured. Otherwise an embedded
    gateway starts (data in ``data_dir``, a temporary dir if None) and the kernels get its URL and
    a login through the environment.
    """
    root_dir = root_dir or (NOTEBOOKS_DIR if IN_CLONE else Path.cwd())
    if os.environ.get("LINKIS_GATEWAY"):
        print(f"Kernels will use LINKIS_GATEWAY={os.environ['LINKIS_GATEWAY']}", flush=True)
        return _serve_lab(root_dir, dict(os.environ), extra)
    with (
        tempfile.TemporaryDirectory(prefix="linkis-magic-lab-") as tmp,
        embedded_gateway(data_dir or Path(tmp) / "gateway") as gateway,
    ):
        print(f"Embedded Linkis gateway on {gateway.url}; the kernels log in to it", flush=True)
        return _serve_lab(root_dir, kernel_env(gateway), extra)


def _serve_lab(root_dir: Path, env: Mapping[str, str], extra: Sequence[str]) -> int:
    process = subprocess.Popen(lab_command(root_dir, extra), env=dict(env))

    def stop(signum: int, frame: object) -> None:
        process.terminate()

    # On SIGTERM or Ctrl+C JupyterLab shuts down first, then the gateway and its engines.
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                process.terminate()
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``linkis-magic demo`` (and ``python -m linkis_magic.demo``)."""
    parser.add_argument(
        "notebook", nargs="?", type=Path, default=QUICKSTART, help="notebook to run (01-quickstart)"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=DEMO_OUTPUT, help="where the executed notebook goes"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take (600)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m linkis_magic.demo [NOTEBOOK]`` or ``python -m linkis_magic.demo lab``."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    if args[:1] == ["lab"]:
        return run_lab(extra=args[1:])
    parser = argparse.ArgumentParser(prog="linkis-magic demo", description=run_demo.__doc__)
    add_arguments(parser)
    ns = parser.parse_args(args)
    return run_demo(ns.notebook, ns.output_dir, ns.timeout)


if __name__ == "__main__":
    sys.exit(main())
