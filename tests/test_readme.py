"""The README's code runs: every ```python and ```sh block is executed here, in a scratch folder
that sees the repository's scenarios, examples and configuration, so the README cannot drift.

A block may say how it runs with an HTML comment on the line before it (invisible on GitHub):

* ``<!-- readme-test: server -->``: needs a running service. The test starts one
  (``campus-dispatch serve``, the shipped configuration, an admin token in
  ``~/.config/campus-dispatch/admin.tokens``) and the block's ``127.0.0.1:50051`` and
  ``HOST:50051`` are that server's address.
* ``<!-- readme-test: slow -->``: runs only with ``-m slow`` (``make test-slow``).
* ``<!-- readme-test: skip REASON -->``: not run, for the reason given (it starts a long-lived
  server, needs data outside the repository, or a tool the machine does not have).

Every other block runs in the default suite. ``HOME`` is the scratch folder, so ``~`` paths
stay out of the user's home; ``.venv/bin/`` is the venv running the tests.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->")
#: What a scratch folder links back to (read-only use by the blocks).
LINKED = ("scenarios", "examples", "config")
RUNNABLE = ("python", "sh")


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README."""

    line: int  # the line of its opening fence
    lang: str
    code: str
    mode: str  # run, server, slow, skip
    reason: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang}:{self.mode}"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block, with the directive on the line before it (if any)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    k = 0
    while k < len(lines):
        fence = re.match(r"^\s*```(\w*)\s*$", lines[k])
        if not fence:
            k += 1
            continue
        start, lang = k, fence.group(1)
        end = next(j for j in range(k + 1, len(lines)) if lines[j].strip() == "```")
        body = [
            line[len(lines[start]) - len(lines[start].lstrip()) :] for line in lines[k + 1 : end]
        ]
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        directive = DIRECTIVE.search(before)
        mode, reason = (directive.group(1), directive.group(2)) if directive else ("run", "")
        blocks.append(Block(start + 1, lang, "\n".join(body) + "\n", mode, reason))
        k = end + 1
    return blocks


BLOCKS = [b for b in readme_blocks(README.read_text()) if b.lang in RUNNABLE]


def test_every_directive_is_known_and_every_skip_says_why() -> None:
    for block in readme_blocks(README.read_text()):
        assert block.mode in ("run", "server", "slow", "skip"), block.id
        if block.mode == "skip":
            assert len(block.reason) > 10, f"{block.id}: a skip needs its reason"
    assert len(BLOCKS) >= 10
    skipped = sum(1 for b in BLOCKS if b.mode == "skip")
    assert len(BLOCKS) - skipped > skipped, "most of the README's code must run"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that looks like the repository to the blocks, and a home for ``~``."""
    folder = tmp_path_factory.mktemp("readme")
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    tokens = folder / ".config" / "campus-dispatch" / "admin.tokens"
    tokens.parent.mkdir(parents=True)
    tokens.write_text(f"ops {secrets.token_urlsafe(32)}\n")
    tokens.chmod(0o600)
    return folder


def _env(scratch: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(scratch), "PYTHONPATH": str(ROOT)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def server(scratch: Path) -> Iterator[str]:
    """A service like ``make run`` starts, with the scratch home's admin token; its address."""
    tokens = scratch / ".config" / "campus-dispatch" / "admin.tokens"
    proc = subprocess.Popen(
        [sys.executable, "-m", "campus_dispatch", "serve", "--admin-token-file", str(tokens)],
        cwd=ROOT,
        env={**_env(scratch), "PORT": "0", "METRICS_PORT": "-1", "WORKERS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    found = re.search(r"ready on (\S+:\d+)", ready)
    if not found:
        proc.kill()
        raise AssertionError(f"serve did not start: {ready!r}")
    yield found.group(1)
    proc.terminate()
    proc.wait(timeout=20)


def run_block(block: Block, scratch: Path, address: str = "") -> subprocess.CompletedProcess[str]:
    """Run the block's code in ``scratch`` (10 min at most; 40 for a slow one)."""
    code = block.code
    if address:
        code = code.replace("127.0.0.1:50051", address).replace("HOST:50051", address)
    if block.lang == "python":
        argv = [sys.executable, "-c", code]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", code]
    return subprocess.run(
        argv,
        cwd=scratch,
        env=_env(scratch),
        capture_output=True,
        text=True,
        timeout=2400 if block.mode == "slow" else 600,
    )


def _check(block: Block, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, (
        f"{block.id} exited {done.returncode}\n--- code\n{block.code}--- stdout\n"
        f"{done.stdout[-3000:]}--- stderr\n{done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "run"], ids=lambda b: b.id)
def test_block_runs(block: Block, scratch: Path) -> None:
    _check(block, run_block(block, scratch))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "server"], ids=lambda b: b.id)
def test_block_runs_against_a_server(block: Block, scratch: Path, server: str) -> None:
    _check(block, run_block(block, scratch, server))


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "slow"], ids=lambda b: b.id)
def test_slow_block_runs(block: Block, scratch: Path) -> None:
    _check(block, run_block(block, scratch))
