"""Build hook: the gRPC code of ``api/pb/`` is generated from ``protos/`` when the project is built.

The generated modules (``*_pb2.py``, ``*_pb2_grpc.py``, ``*_pb2.pyi``) are not in git. Building
a wheel (``pip wheel .``, ``python -m build``) writes them into the built package, so a wheel
from a clean clone carries them; an editable install writes them into the source tree, as
``make protos`` does, with the same protoc command. Everything else is in ``pyproject.toml``;
``grpcio-tools`` is a build requirement there (pinned: its protoc decides the protobuf and grpcio
versions the generated code needs at run time).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: The contract, compiled as ``api/pb/<path under protos/>`` (the Makefile's PROTO list).
PROTOS = (
    "protos/campus_dispatch/v1/dispatch.proto",
    "protos/campus_dispatch/v1/admin.proto",
)


def generate_protos(out: Path) -> list[Path]:
    """Run grpc_tools.protoc on :data:`PROTOS` into ``out`` (the folder that holds ``api/``);
    returns the files written."""
    missing = [p for p in PROTOS if not (ROOT / p).is_file()]
    if missing:
        raise FileNotFoundError(f"cannot generate the gRPC code: missing {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-Iapi/pb=protos",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--pyi_out={out}",
        *PROTOS,
    ]
    subprocess.run(command, cwd=ROOT, check=True)
    written = []
    for proto in PROTOS:
        stem = out / "api" / "pb" / Path(proto).relative_to("protos").with_suffix("")
        for suffix in ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi"):
            path = stem.with_name(stem.name + suffix)
            if not path.is_file():
                raise FileNotFoundError(f"protoc did not write {path}")
            written.append(path)
    return written


class BuildPyWithProtos(build_py):
    """build_py, then the generated gRPC code into the build (or the source tree if editable)."""

    def run(self) -> None:
        super().run()
        editable = bool(getattr(self, "editable_mode", False))
        out = ROOT if editable else Path(self.build_lib).resolve()
        written = generate_protos(out)
        self.announce(f"generated {len(written)} gRPC files into {out}", level=2)
        if not editable:
            self._generated = [str(p) for p in written]

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        return outputs + [p for p in getattr(self, "_generated", []) if p not in outputs]


setup(cmdclass={"build_py": BuildPyWithProtos})
