"""The Linkis kernelspecs: one table, the files made from it, and install / list / remove.

The top-level ``kernelspec/`` folder (shipped as wheel shared-data) is generated from
``KERNELSPECS`` with ``python -m linkis_magic.kernelspecs kernelspec``; a test checks they agree.
"""

from __future__ import annotations

import json
import logging
import math
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager

log = logging.getLogger(__name__)

ENGINE_ENV = "LINKIS_KERNEL_ENGINE"
RUN_TYPE_ENV = "LINKIS_KERNEL_RUN_TYPE"

LOGO_FILES = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


@dataclass(frozen=True)
class KernelSpecInfo:
    """One Linkis kernelspec: where its cells go and how Jupyter shows it.

    Attributes:
        name: the kernelspec's directory name, as ``jupyter kernelspec list`` shows it.
        display_name: the name in JupyterLab's launcher and kernel picker.
        engine: the Linkis engine type every cell goes to.
        run_type: the Linkis runType of those cells.
        language: the kernelspec's language (it picks the notebook's highlighting).
        color: the logo's background colour, as ``#rrggbb``.
    """

    name: str
    display_name: str
    engine: str
    run_type: str
    language: str
    color: str


KERNELSPECS: dict[str, KernelSpecInfo] = {
    spec.name: spec
    for spec in (
        KernelSpecInfo("linkis_spark_sql", "Linkis Spark SQL", "spark", "sql", "sql", "#e25a1c"),
        KernelSpecInfo("linkis_pyspark", "Linkis PySpark", "spark", "py", "python", "#2f6db5"),
        KernelSpecInfo("linkis_python", "Linkis Python", "python", "python", "python", "#2e8b57"),
        KernelSpecInfo("linkis_shell", "Linkis Shell", "shell", "shell", "bash", "#3a3f44"),
    )
}


def kernel_json(spec: KernelSpecInfo, executable: str = "python") -> dict[str, Any]:
    """Return the kernel.json content of ``spec``.

    Args:
        spec: the kernelspec.
        executable: argv[0]. Plain ``python`` keeps a wheel portable (jupyter_client runs it with
            its own interpreter); an installer passes ``sys.executable``.
    """
    return {
        "argv": [executable, "-m", "linkis_magic.kernel", "-f", "{connection_file}"],
        "display_name": spec.display_name,
        "language": spec.language,
        "interrupt_mode": "signal",
        "env": {ENGINE_ENV: spec.engine, RUN_TYPE_ENV: spec.run_type},
        "metadata": {"debugger": False},
    }


def kernel_json_text(spec: KernelSpecInfo, executable: str = "python") -> str:
    """Return kernel.json as the text written to disk."""
    return json.dumps(kernel_json(spec, executable), indent=2) + "\n"


def write_kernelspec(spec: KernelSpecInfo, directory: Path, executable: str = "python") -> Path:
    """Write kernel.json and the logos of ``spec`` into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kernel.json").write_text(kernel_json_text(spec, executable), encoding="utf-8")
    (directory / "logo-32x32.png").write_bytes(logo_png(spec.color, 32))
    (directory / "logo-64x64.png").write_bytes(logo_png(spec.color, 64))
    (directory / "logo-svg.svg").write_text(logo_svg(spec.color), encoding="utf-8")
    return directory


def write_all(root: Path, executable: str = "python") -> list[Path]:
    """Write every kernelspec into ``root/<name>/``; return the directories."""
    return [write_kernelspec(spec, root / spec.name, executable) for spec in KERNELSPECS.values()]


def _select(names: Iterable[str] | None) -> list[KernelSpecInfo]:
    names = list(names or [])
    if not names:
        return list(KERNELSPECS.values())
    unknown = [name for name in names if name not in KERNELSPECS]
    if unknown:
        raise ValueError(
            f"unknown kernelspec {', '.join(unknown)}; the Linkis kernelspecs are "
            f"{', '.join(KERNELSPECS)}"
        )
    return [KERNELSPECS[name] for name in names]


def install(
    names: Iterable[str] | None = None,
    *,
    user: bool = False,
    prefix: str | None = None,
    executable: str | None = None,
) -> dict[str, str]:
    """Install Linkis kernelspecs into a Jupyter data directory.

    Args:
        names: kernelspecs to install; all of them by default.
        user: install into the user's Jupyter directory.
        prefix: install into ``PREFIX/share/jupyter/kernels`` (``sys.prefix`` for this environment).
            With neither, the system-wide directory.
        executable: the Python that runs the kernel; this interpreter by default.

    Returns:
        The installed directory of each kernelspec, by name.

    Raises:
        ValueError: an unknown name, or both ``user`` and ``prefix``.
    """
    specs = _select(names)
    if user and prefix:
        raise ValueError("choose one of user and prefix, not both")
    manager = KernelSpecManager()
    installed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="linkis-kernelspec-") as tmp:
        for spec in specs:
            source = write_kernelspec(spec, Path(tmp) / spec.name, executable or sys.executable)
            path = manager.install_kernel_spec(str(source), spec.name, user=user, prefix=prefix)
            log.info("installed kernelspec %s in %s", spec.name, path)
            installed[spec.name] = path
    return installed


def installed(manager: KernelSpecManager | None = None) -> dict[str, str]:
    """Return the Linkis kernelspecs Jupyter finds, as name -> directory.

    Args:
        manager: the KernelSpecManager to ask (its ``kernel_dirs``); Jupyter's search path by
            default.
    """
    found = (manager or KernelSpecManager()).find_kernel_specs()
    return {name: path for name, path in sorted(found.items()) if name in KERNELSPECS}


def remove(
    names: Iterable[str] | None = None, manager: KernelSpecManager | None = None
) -> dict[str, str]:
    """Remove Linkis kernelspecs Jupyter finds (the first of each name on its search path).

    Args:
        names: kernelspecs to remove; every installed Linkis kernelspec by default.
        manager: the KernelSpecManager whose ``kernel_dirs`` are searched; Jupyter's by default.

    Returns:
        The removed directory of each kernelspec, by name.

    Raises:
        ValueError: an unknown name, or a name that is not installed.
    """
    manager = manager or KernelSpecManager()
    present = installed(manager)
    names = list(names or [])
    wanted = [spec.name for spec in _select(names)] if names else list(present)
    missing = [name for name in wanted if name not in present]
    if missing:
        raise ValueError(f"kernelspec {', '.join(missing)} is not installed")
    removed: dict[str, str] = {}
    for name in wanted:
        removed[name] = manager.remove_kernel_spec(name)
        log.info("removed kernelspec %s from %s", name, removed[name])
    return removed


def run_command(args: Any) -> int:
    """Carry out ``linkis-magic kernel ACTION``; ``args`` is the parsed argparse namespace.

    ``args.action`` is install, list or remove; ``args.names`` the kernelspecs (empty for all);
    install also reads ``args.user``, ``args.sys_prefix`` and ``args.prefix``.
    """
    names = list(getattr(args, "names", None) or [])
    try:
        if args.action == "install":
            prefix = sys.prefix if args.sys_prefix else args.prefix
            for name, path in install(names, user=args.user, prefix=prefix).items():
                print(f"installed {name} in {path}")
        elif args.action == "list":
            found = installed()
            for name, path in found.items():
                print(f"{name}  {path}")
            if not found:
                print("no Linkis kernelspecs installed; add them with: linkis-magic kernel install")
        else:
            removed = remove(names)
            for name, path in removed.items():
                print(f"removed {name} from {path}")
            if not removed:
                print("no Linkis kernelspecs installed: nothing to remove")
    except (ValueError, OSError) as exc:
        print(f"linkis-magic kernel {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``linkis-magic kernel install|list|remove`` to the command's argparse subparsers."""
    parser = subparsers.add_parser("kernel", help="install, list or remove the Linkis kernelspecs")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    names_help = f"kernelspecs (default: all of {', '.join(KERNELSPECS)})"
    install_parser = actions.add_parser("install", help="install the Linkis kernelspecs")
    where = install_parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="into the user's Jupyter directory")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python environment")
    where.add_argument("--prefix", metavar="P", help="into P/share/jupyter/kernels")
    install_parser.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    actions.add_parser("list", help="list the Linkis kernelspecs Jupyter finds")
    remove_parser = actions.add_parser("remove", help="remove installed Linkis kernelspecs")
    remove_parser.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    parser.set_defaults(func=run_command)


# The logo: two interlocked rings (a link) in white on a rounded square of the kernel's colour.
# The PNG rasteriser and the SVG writer read the same geometry, in units of the logo's side.

_CORNER = 0.18
_RING_RADIUS = 0.21
_RING_WIDTH = 0.08
_GAP = 0.04
_RING_CENTERS = ((0.385, 0.5), (0.615, 0.5))
# The left ring passes over the right one along this arc of it (angles in radians, y down),
# centred on the lower crossing and long enough to cover the right ring's gap.
_CROSSING_ANGLE = math.atan2(math.sqrt(_RING_RADIUS**2 - 0.115**2), 0.115)
_OVER_ARC = (_CROSSING_ANGLE - 0.8, _CROSSING_ANGLE + 0.8)


def _rgb(color: str) -> tuple[int, int, int]:
    value = int(color.lstrip("#"), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def _rounded_square_distance(x: float, y: float) -> float:
    qx = abs(x - 0.5) - (0.5 - _CORNER)
    qy = abs(y - 0.5) - (0.5 - _CORNER)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - _CORNER


def _ring_distance(x: float, y: float, center: tuple[float, float], width: float) -> float:
    return abs(math.hypot(x - center[0], y - center[1]) - _RING_RADIUS) - width / 2


def _coverage(distance: float, size: int) -> float:
    return min(max(0.5 - distance * size, 0.0), 1.0)


def _logo_layers(x: float, y: float, size: int) -> list[tuple[float, float]]:
    """Return (coverage, whiteness) per layer at a point, painted in order over the background.

    A layer is a ring with its gap: white on the ring, the background colour around it.
    """
    left, right = _RING_CENTERS
    angle = math.atan2(y - left[1], x - left[0])
    clip = 1.0 if _OVER_ARC[0] <= angle <= _OVER_ARC[1] else 0.0
    halo_width = _RING_WIDTH + 2 * _GAP
    return [
        (_coverage(_ring_distance(x, y, left, _RING_WIDTH), size), 1.0),
        (
            _coverage(_ring_distance(x, y, right, halo_width), size),
            _coverage(_ring_distance(x, y, right, _RING_WIDTH), size),
        ),
        (
            clip * _coverage(_ring_distance(x, y, left, halo_width), size),
            _coverage(_ring_distance(x, y, left, _RING_WIDTH), size),
        ),
    ]


def logo_pixels(color: str, size: int) -> bytes:
    """Return the logo as ``size`` rows of RGBA bytes (no PNG framing)."""
    background = _rgb(color)
    rows = bytearray()
    for row in range(size):
        for col in range(size):
            x, y = (col + 0.5) / size, (row + 0.5) / size
            alpha = _coverage(_rounded_square_distance(x, y), size)
            white = 0.0
            for coverage, whiteness in _logo_layers(x, y, size):
                white += (whiteness - white) * coverage
            pixel = [round(channel + (255 - channel) * white) for channel in background]
            rows.extend((*pixel, round(alpha * 255)))
    return bytes(rows)


def logo_png(color: str, size: int) -> bytes:
    """Return the logo as a ``size`` x ``size`` RGBA PNG."""
    pixels = logo_pixels(color, size)
    stride = size * 4
    raw = b"".join(b"\x00" + pixels[row * stride : (row + 1) * stride] for row in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def logo_svg(color: str) -> str:
    """Return the logo as an SVG document on a 64-unit canvas."""

    def n(value: float) -> str:
        return f"{value * 64:.2f}".rstrip("0").rstrip(".")

    def ring(center: tuple[float, float], width: float, stroke: str) -> str:
        return (
            f'  <circle cx="{n(center[0])}" cy="{n(center[1])}" r="{n(_RING_RADIUS)}" fill="none" '
            f'stroke="{stroke}" stroke-width="{n(width)}"/>\n'
        )

    def arc(center: tuple[float, float], radius: float, width: float, stroke: str) -> str:
        (x1, y1), (x2, y2) = (
            (center[0] + radius * math.cos(a), center[1] + radius * math.sin(a)) for a in _OVER_ARC
        )
        return (
            f'  <path d="M {n(x1)} {n(y1)} A {n(radius)} {n(radius)} 0 0 1 {n(x2)} {n(y2)}" '
            f'fill="none" stroke="{stroke}" stroke-width="{n(width)}"/>\n'
        )

    # The gap around the arc is drawn as two bands beside it, not under it: a band under the
    # white arc would show at the arc's ends in renderers that antialias each shape separately.
    left, right = _RING_CENTERS
    halo = _RING_WIDTH + 2 * _GAP
    beside = _RING_WIDTH / 2 + _GAP / 2
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">\n'
        f'  <rect width="64" height="64" rx="{n(_CORNER)}" fill="{color}"/>\n'
        + ring(left, _RING_WIDTH, "#ffffff")
        + ring(right, halo, color)
        + ring(right, _RING_WIDTH, "#ffffff")
        + arc(left, _RING_RADIUS - beside, _GAP, color)
        + arc(left, _RING_RADIUS + beside, _GAP, color)
        + arc(left, _RING_RADIUS, _RING_WIDTH, "#ffffff")
        + "</svg>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the kernelspec folder: ``python -m linkis_magic.kernelspecs DIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m linkis_magic.kernelspecs DIR", file=sys.stderr)
        return 2
    for directory in write_all(Path(args[0])):
        print(f"wrote {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
