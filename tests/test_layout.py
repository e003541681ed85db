"""The house rules, read from the code: which package may import which, who speaks gRPC, and
no import cycle inside solver/. Every import counts, at module level or inside a function."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Packages of the project (bench/ is a folder of scripts, checked like one).
PACKAGES = (
    "api",
    "solver",
    "storm",
    "campus_maps",
    "server",
    "scenarios",
    "instances",
    "load",
    "bench",
    "campus_dispatch",
)
GRPC = ("grpc", "grpc_status", "grpc_health", "grpc_reflection", "grpc_tools")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every project module (generated code excluded) by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "pb" in path.relative_to(ROOT).parts:
                continue
            found[module_name(path)] = path
    return found


def _resolve(name: str) -> str:
    """The longest project module (or the top-level name) that ``name`` refers to."""
    known = modules()
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in known:
            return candidate
    return name


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module ``module`` imports: project modules resolved to the module, others as
    written (``grpc.experimental.gevent``)."""
    tree = ast.parse(modules()[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {_resolve(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            base = node.module or ""
            for alias in node.names:  # ``from solver.engines import kernel`` names a module
                full = f"{base}.{alias.name}"
                found.add(_resolve(full) if full in modules() else _resolve(base))
    return frozenset(found)


def top(name: str) -> str:
    return name.split(".")[0]


def in_package(package: str) -> Iterator[str]:
    return (m for m in modules() if top(m) == package)


def offenders(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list:
    return sorted(
        (m, i)
        for m in in_package(package)
        for i in imports_of(m)
        if top(i) in forbidden and i not in allowed
    )


def test_the_checker_sees_the_imports_it_should() -> None:
    """The rules below are only as good as the import reader: spot-check it."""
    assert "solver.engines.kernel" in imports_of("solver.engines.greedy")  # from x import mod
    assert "api.codec" in imports_of("server.convert")
    assert "grpc" in imports_of("api.client")
    assert "server.cli" in imports_of("campus_dispatch.cli")
    assert len(modules()) > 60


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("api", ()),
        ("solver", ()),
        ("storm", ()),
        ("campus_maps", ()),
        ("scenarios", ()),
        ("instances", ()),
        ("load", ("server.app",)),
        ("bench", ("server.app",)),
        ("campus_dispatch", ("server.cli",)),
    ],
)
def test_no_package_but_server_imports_server_modules(
    package: str, allowed: tuple[str, ...]
) -> None:
    """bench/ and load/ start a server through its public face; the command line assembles the
    server's subcommands; nobody else reaches into server/."""
    assert offenders(package, ("server",), allowed) == []


def test_server_app_publishes_what_bench_and_load_use() -> None:
    import server.app

    used: set[str] = set()
    for package in ("bench", "load"):
        for m in in_package(package):
            tree = ast.parse(modules()[m].read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "server.app":
                    used |= {alias.name for alias in node.names}
    assert used and used <= set(server.app.__all__)


@pytest.mark.parametrize("package", ["solver", "campus_maps", "storm"])
def test_the_core_never_imports_an_adapter(package: str) -> None:
    adapters = ("api", "server", "scenarios", "instances", "load", "bench", "campus_dispatch")
    assert offenders(package, adapters) == []


def test_the_contract_imports_only_the_solver_vocabulary() -> None:
    assert offenders("api", ("server", "scenarios", "instances", "load", "bench")) == []
    assert {i for m in in_package("api") for i in imports_of(m) if top(i) == "solver"} <= {
        "solver.plan"
    }


def test_the_storm_guard_is_domain_code_the_server_alone_uses() -> None:
    """storm/ reads orders and places, not requests: it imports no solver either; only the
    server feeds it (scenarios see its verdicts through the protocol; bench/ times it)."""
    assert offenders("storm", ("solver",)) == []
    users = {top(m) for m in modules() if any(top(i) == "storm" for i in imports_of(m))}
    assert users <= {"storm", "server", "bench"}, users


def test_instances_never_import_scenarios() -> None:
    assert offenders("instances", ("scenarios", "server", "load", "bench")) == []


def test_only_api_server_and_load_import_grpc() -> None:
    speaking = {top(m) for m in modules() if any(top(i) in GRPC for i in imports_of(m))}
    assert speaking <= {"api", "server", "load"}, speaking


@pytest.mark.parametrize("package", ["server", "scenarios", "load", "bench"])
def test_the_protocol_comes_from_api(package: str) -> None:
    """Each package that speaks the protocol imports api/ (there is no other copy of it)."""
    assert any(top(i) == "api" for m in in_package(package) for i in imports_of(m))
    assert not (ROOT / "server" / "pb").exists()


def solver_graph() -> dict[str, set[str]]:
    return {m: {i for i in imports_of(m) if top(i) == "solver"} for m in in_package("solver")}


def test_no_import_cycle_between_modules_of_solver() -> None:
    graph = solver_graph()
    # a package's __init__ re-exporting its modules is not a cycle of the modules themselves
    graph = {m: {i for i in deps if i != "solver"} for m, deps in graph.items() if m != "solver"}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(n) :], n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def layer(module: str) -> int:
    """0: the vocabulary (solver/*.py), 1: engines, 2: runtime."""
    parts = module.split(".")
    return {"engines": 1, "runtime": 2}.get(parts[1], 0) if len(parts) > 1 else 0


def test_solver_layers_only_import_downwards() -> None:
    upward = sorted(
        (m, i)
        for m, deps in solver_graph().items()
        for i in deps
        if i != "solver" and layer(i) > layer(m)
    )
    assert upward == []


def test_scenarios_never_import_server_even_for_replays_through_it() -> None:
    remote = imports_of("scenarios.replay.remote")
    assert "api.client" in remote and not any(top(i) in ("server", *GRPC) for i in remote)
