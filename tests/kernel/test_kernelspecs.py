"""The kernelspec table, the kernelspec/ folder made from it, and install / list / remove."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from linkis_magic import kernelspecs
from linkis_magic.kernelspecs import KERNELSPECS, LOGO_FILES

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "kernelspec"
REGENERATE = "regenerate it: .venv/bin/python -m linkis_magic.kernelspecs kernelspec"


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw RGBA rows of a PNG whose rows all use filter 0 (as ours do)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", header[:10])
    assert (depth, color_type) == (8, 6), "expected 8-bit RGBA"
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    assert all(raw[row * stride] == 0 for row in range(height))
    pixels = b"".join(raw[row * stride + 1 : (row + 1) * stride] for row in range(height))
    return width, height, pixels


def test_table_names_the_four_kernels_with_their_engines_and_languages() -> None:
    summary = {
        name: (spec.display_name, spec.engine, spec.run_type, spec.language)
        for name, spec in KERNELSPECS.items()
    }
    assert summary == {
        "linkis_spark_sql": ("Linkis Spark SQL", "spark", "sql", "sql"),
        "linkis_pyspark": ("Linkis PySpark", "spark", "py", "python"),
        "linkis_python": ("Linkis Python", "python", "python", "python"),
        "linkis_shell": ("Linkis Shell", "shell", "shell", "bash"),
    }


def test_kernel_json_runs_the_linkis_kernel_with_the_engine_in_env() -> None:
    content = kernelspecs.kernel_json(KERNELSPECS["linkis_pyspark"])

    assert content["argv"] == ["python", "-m", "linkis_magic.kernel", "-f", "{connection_file}"]
    assert content["env"] == {"LINKIS_KERNEL_ENGINE": "spark", "LINKIS_KERNEL_RUN_TYPE": "py"}
    assert content["language"] == "python"
    assert content["interrupt_mode"] == "signal"


def test_shipped_folder_holds_exactly_the_table() -> None:
    shipped = sorted(path.name for path in SHIPPED.iterdir())
    assert shipped == sorted(KERNELSPECS), REGENERATE
    for name in KERNELSPECS:
        files = sorted(path.name for path in (SHIPPED / name).iterdir())
        assert files == sorted(["kernel.json", *LOGO_FILES]), REGENERATE


@pytest.mark.parametrize("name", sorted(KERNELSPECS))
def test_shipped_files_match_what_the_table_generates(name: str, tmp_path: Path) -> None:
    generated = kernelspecs.write_kernelspec(KERNELSPECS[name], tmp_path / name)
    shipped = SHIPPED / name

    assert json.loads((shipped / "kernel.json").read_text()) == json.loads(
        (generated / "kernel.json").read_text()
    ), REGENERATE
    assert (shipped / "logo-svg.svg").read_text() == (generated / "logo-svg.svg").read_text()
    for logo in ("logo-32x32.png", "logo-64x64.png"):
        # Compare pixels, not bytes: another zlib may compress the same pixels differently.
        expected = decode_png((generated / logo).read_bytes())
        assert decode_png((shipped / logo).read_bytes()) == expected, REGENERATE


@pytest.mark.parametrize("size", [32, 64])
def test_png_logo_has_its_size_transparent_corners_and_a_solid_middle(size: int) -> None:
    width, height, pixels = decode_png(kernelspecs.logo_png("#e25a1c", size))

    def pixel(x: int, y: int) -> tuple[int, ...]:
        start = (y * size + x) * 4
        return tuple(pixels[start : start + 4])

    assert (width, height) == (size, size)
    assert pixel(0, 0)[3] == 0
    assert pixel(size - 1, size - 1)[3] == 0
    assert pixel(size // 2, 2) == (0xE2, 0x5A, 0x1C, 255)
    assert pixel(size // 2, size // 2)[3] == 255
    assert any(pixel(x, size // 2)[:3] == (255, 255, 255) for x in range(size))


def test_svg_logo_is_well_formed_xml_in_the_kernel_colour() -> None:
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.fromstring(kernelspecs.logo_svg("#2f6db5"))

    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.attrib["viewBox"] == "0 0 64 64"
    assert "#2f6db5" in kernelspecs.logo_svg("#2f6db5")


@pytest.fixture
def jupyter_prefix(tmp_path: Path) -> Path:
    return tmp_path / "prefix"


def only(prefix: Path) -> KernelSpecManager:
    """A KernelSpecManager that sees the prefix alone, not the kernelspecs of this machine."""
    return KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])


def test_install_into_a_prefix_makes_jupyter_find_them(jupyter_prefix: Path) -> None:
    paths = kernelspecs.install(prefix=str(jupyter_prefix))

    assert set(paths) == set(KERNELSPECS)
    specs = only(jupyter_prefix).get_all_specs()
    for name, spec in KERNELSPECS.items():
        found = specs[name]
        assert Path(found["resource_dir"]) == jupyter_prefix / "share/jupyter/kernels" / name
        assert found["spec"]["display_name"] == spec.display_name
        assert found["spec"]["argv"][0] == sys.executable
        assert (Path(found["resource_dir"]) / "logo-64x64.png").is_file()
    found = kernelspecs.installed(only(jupyter_prefix))
    assert found == {name: paths[name] for name in sorted(KERNELSPECS)}


def test_install_some_then_remove_them(jupyter_prefix: Path) -> None:
    manager = only(jupyter_prefix)
    kernelspecs.install(["linkis_shell", "linkis_python"], prefix=str(jupyter_prefix))
    assert sorted(kernelspecs.installed(manager)) == ["linkis_python", "linkis_shell"]

    removed = kernelspecs.remove(["linkis_shell"], manager)

    assert list(removed) == ["linkis_shell"]
    assert not Path(removed["linkis_shell"]).exists()
    assert sorted(kernelspecs.installed(manager)) == ["linkis_python"]
    assert list(kernelspecs.remove(manager=manager)) == ["linkis_python"]
    assert kernelspecs.installed(manager) == {}


def test_unknown_names_and_missing_kernels_are_clear_errors(jupyter_prefix: Path) -> None:
    with pytest.raises(ValueError, match="unknown kernelspec linkis_r; the Linkis kernelspecs"):
        kernelspecs.install(["linkis_r"], prefix=str(jupyter_prefix))
    with pytest.raises(ValueError, match="linkis_shell is not installed"):
        kernelspecs.remove(["linkis_shell"], only(jupyter_prefix))
    with pytest.raises(ValueError, match="not both"):
        kernelspecs.install(user=True, prefix=str(jupyter_prefix))


def linkis_magic_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linkis_magic.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_installs_lists_and_removes_kernelspecs(tmp_path: Path) -> None:
    # JUPYTER_PATH comes first on Jupyter's search path: the prefix's kernelspecs shadow any of
    # the same names installed on this machine, so a named remove takes the prefix's.
    prefix = tmp_path / "prefix"
    env = {**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    kernels = prefix / "share" / "jupyter" / "kernels"

    installed = linkis_magic_cli("kernel", "install", "--prefix", str(prefix), env=env)
    assert installed.returncode == 0, installed.stderr
    assert sorted(path.name for path in kernels.iterdir()) == sorted(KERNELSPECS)
    for name in KERNELSPECS:
        assert f"installed {name} in {kernels / name}" in installed.stdout

    listed = linkis_magic_cli("kernel", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == sorted(KERNELSPECS)

    removed = linkis_magic_cli("kernel", "remove", "linkis_pyspark", env=env)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"removed linkis_pyspark from {kernels / 'linkis_pyspark'}"
    assert not (kernels / "linkis_pyspark").exists()
    # Not "remove it again": that would find and remove one installed on this machine.


def test_cli_refuses_two_destinations_and_unknown_names(tmp_path: Path) -> None:
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}

    both = linkis_magic_cli("kernel", "install", "--user", "--prefix", str(tmp_path), env=env)
    unknown = linkis_magic_cli("kernel", "install", "--prefix", str(tmp_path), "linkis_r", env=env)

    assert both.returncode == 2
    assert "not allowed with argument --user" in both.stderr
    assert unknown.returncode == 1
    assert "unknown kernelspec linkis_r" in unknown.stderr
    assert not (tmp_path / "share" / "jupyter" / "kernels").exists()


def test_cli_user_install_goes_to_the_users_jupyter_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER_")}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")})

    installed = linkis_magic_cli("kernel", "install", "--user", "linkis_shell", env=env)

    assert installed.returncode == 0, installed.stderr
    spec = home / ".local" / "share" / "jupyter" / "kernels" / "linkis_shell" / "kernel.json"
    assert json.loads(spec.read_text())["display_name"] == "Linkis Shell"


def test_names_may_come_from_any_iterable(jupyter_prefix: Path) -> None:
    paths = kernelspecs.install(iter(["linkis_shell"]), prefix=str(jupyter_prefix))
    removed = kernelspecs.remove(iter(["linkis_shell"]), only(jupyter_prefix))

    assert list(paths) == list(removed) == ["linkis_shell"]
