"""Packaging: what ``pip install`` of the project gives.

The fast tests check the layout the wheel relies on (the repository's ``config/dispatch.toml``
and ``examples/`` link to the package data, every data file of a package is declared package
data, one grpcio-tools version generates the code everywhere). The ``slow`` test builds the
wheel from a clean copy of the work tree (sdist, then the wheel from it, as ``python -m build``
does), installs it into a fresh virtual environment, and serves and answers the example
request from a folder outside the repository."""

from __future__ import annotations

import fnmatch
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

import campus_dispatch
from solver.params import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: The generated gRPC modules the build must add (setup.py's hook).
GENERATED = tuple(
    f"api/pb/campus_dispatch/v1/{proto}{suffix}"
    for proto in ("dispatch", "admin")
    for suffix in ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")
)
#: Data the installed command reads, by path in the wheel.
DATA = (
    "campus_dispatch/data/dispatch.toml",
    "campus_dispatch/data/examples/solve_request.json",
    "campus_maps/data/defaults.toml",
    "campus_maps/data/SOURCE.md",
    "campus_maps/data/northwestern/campus.toml",
    "campus_maps/data/northwestern/northwestern_evanston.osm.xz",
    "scenarios/data/northwestern-lunch.json",
    "scenarios/data/tiny-lunch.json",
    "load/requests/northwestern-lunch/req-00001.json",
)


def test_the_repository_paths_link_to_the_package_data() -> None:
    """One real file each: ``config/dispatch.toml`` and ``examples/`` are links into
    campus_dispatch/data, which the code reads (so an installed wheel reads the same files)."""
    assert DEFAULT_CONFIG == campus_dispatch.DATA_DIR / "dispatch.toml"
    assert DEFAULT_CONFIG.is_file() and not DEFAULT_CONFIG.is_symlink()
    assert (ROOT / "config" / "dispatch.toml").resolve() == DEFAULT_CONFIG
    assert (ROOT / "examples").resolve() == campus_dispatch.EXAMPLES_DIR
    assert (campus_dispatch.EXAMPLES_DIR / "solve_request.json").is_file()


def test_the_version_is_the_distributions() -> None:
    assert campus_dispatch.__version__ == PYPROJECT["project"]["version"]


def package_data_files() -> list[str]:
    """Every file of the packages that is neither code (generated code included) nor a cache."""
    packages = [
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    return sorted(
        path.relative_to(ROOT).as_posix()
        for package in packages
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyi", ".pyc")
        and "__pycache__" not in path.parts
    )


def test_every_data_file_of_a_package_is_package_data() -> None:
    """A file added next to the code but not to ``[tool.setuptools.package-data]`` would be
    missing from the wheel."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    undeclared = [
        f
        for f in package_data_files()
        if not any(
            fnmatch.fnmatch(f, f"{package}/{pattern}")
            for package, package_patterns in patterns.items()
            for pattern in package_patterns
        )
    ]
    assert undeclared == []


def pinned(requirements: list[str], name: str) -> str:
    """The version ``name`` is pinned to (``name==X``) in ``requirements``."""
    pins = [
        r.split("==")[1].split(";")[0].strip() for r in requirements if r.startswith(f"{name}==")
    ]
    assert len(pins) == 1, (name, requirements)
    return pins[0]


def test_one_grpcio_tools_generates_the_code() -> None:
    """The build (setup.py), ``make protos`` (the dev extra) and the suite's pins use the same
    grpcio-tools; the generated code needs grpcio at least that version at run time."""
    build = pinned(PYPROJECT["build-system"]["requires"], "grpcio-tools")
    dev = pinned(PYPROJECT["project"]["optional-dependencies"]["dev"], "grpcio-tools")
    constraints = [line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    assert build == dev == pinned(constraints, "grpcio-tools")
    assert f"grpcio>={build}" in PYPROJECT["project"]["dependencies"]


# --- the wheel, installed -------------------------------------------------------------------


def copy_work_tree(dest: Path) -> None:
    """The repository as a clean clone of its work tree: tracked files and new files git does
    not ignore, with their current content (uncommitted changes included), links kept as links;
    no generated code, virtual environment or cache."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in sorted(set(listed.split("\0")) - {""}):
        src = ROOT / name
        inside_link = any((ROOT / parent).is_symlink() for parent in Path(name).parents)
        if inside_link or not (src.exists() or src.is_symlink()):
            continue  # deleted, or a file of a folder now linked (the link itself is listed)
        dst = dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point a child at the repository."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CAMPUS", "PYTEST_ADDOPTS")
    }
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def run(command: list[Any], timeout_s: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``command``; fail the test with the tail of its output unless it exits 0."""
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=kwargs.pop("env", clean_env()),
        **kwargs,
    )
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def read_line(stream: Any, timeout_s: float) -> str:
    """The next line of ``stream`` (a child's stdout), or '' after ``timeout_s``."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        return ""


@pytest.mark.slow
def test_a_wheel_from_a_clean_copy_installs_serves_and_solves(tmp_path: Path) -> None:
    """sdist and wheel from a clean copy, pip install of the wheel (dependencies from the
    registry, pinned by constraints.txt) into a fresh venv, then ``campus-dispatch serve`` from
    outside the repository answers ``campus-dispatch solve`` on the installed example request.
    Takes a few minutes: the dependencies are installed and numba compiles the kernel."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git work tree")
    src = tmp_path / "src"
    copy_work_tree(src)
    assert not any(src.glob("api/pb/**/*_pb2*.py")), "the copy must not hold generated code"

    dist = tmp_path / "dist"
    backend = f"import setuptools.build_meta as b; print(b.build_sdist({str(dist)!r}))"
    sdist = dist / run([sys.executable, "-c", backend], 300, cwd=src).stdout.split()[-1]
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-q",
            "-w",
            dist,
            sdist,
        ],
        600,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("campus_dispatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert set(GENERATED) <= names
    assert set(DATA) <= names
    assert not any(n.startswith(("tests/", "bench/", "config/", "examples/")) for n in names)

    venv = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", venv], 300)
    bin_dir = venv / "bin"
    run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "-c", src / "constraints.txt", wheel],
        1500,
    )

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = clean_env(
        PORT="0",
        METRICS_PORT="-1",
        WORKERS="1",
        CAMPUS_DISPATCH_CACHE=str(tmp_path / "cache"),
        CAMPUS_DISPATCH_MAPS_DIR=str(tmp_path / "maps"),
    )
    probe = (
        "import campus_dispatch, solver.params; print(campus_dispatch.__version__); "
        "print(campus_dispatch.EXAMPLES_DIR / 'solve_request.json'); "
        "print(solver.params.DEFAULT_CONFIG)"
    )
    version, example, config = run(
        [bin_dir / "python", "-c", probe], 120, cwd=outside, env=env
    ).stdout.split()
    assert version == PYPROJECT["project"]["version"]
    shown = run([bin_dir / "campus-dispatch", "--version"], 120, cwd=outside, env=env).stdout
    assert shown.split() == ["campus-dispatch", version]
    site = venv.resolve()
    assert Path(example).is_relative_to(site) and Path(example).is_file()
    assert Path(config).is_relative_to(site) and Path(config).is_file()

    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [bin_dir / "campus-dispatch", "serve"],
        cwd=outside,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        # the worker compiles the numba kernel (no cache yet) before the server says ready
        line = read_line(server.stdout, 600)
        found = re.search(r"ready on (127\.0\.0\.1:\d+)", line)
        assert found, f"serve did not start: {line!r}\n{(tmp_path / 'serve.log').read_text()}"
        assert "default northwestern" in line and f"config {config}" in line, line
        solved = run(
            [
                bin_dir / "campus-dispatch",
                "solve",
                example,
                "--server",
                found[1],
                "--timeout",
                "60",
            ],
            300,
            cwd=outside,
            env=env,
        )
        assert '"request_id": "lunch-12-05-00"' in solved.stdout
        assert "DROPOFF" in solved.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
