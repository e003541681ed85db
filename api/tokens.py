"""Admin token files and variables: where a token is read from (one per line, ``token`` or
``name token``), the minimum length, and the name a change made with it is logged under. Both
the server (which accepts tokens) and the clients (which send one) read them here."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Environment variable holding one admin token.
TOKEN_ENV = "CAMPUS_DISPATCH_ADMIN_TOKEN"
#: Environment variable naming a token file (one token per line, optionally ``name token``).
TOKEN_FILE_ENV = "CAMPUS_DISPATCH_ADMIN_TOKEN_FILE"
#: Tokens shorter than this are refused (a guessable admin token is no protection).
MIN_TOKEN_LENGTH = 16


class TokenFileError(ValueError):
    """A token file that cannot be used: names the file, the line and the reason."""


@dataclass(frozen=True)
class AdminToken:
    """One accepted token and the name changes made with it are logged under."""

    name: str
    secret: bytes


def token_id(secret: str) -> str:
    """A name for an unnamed token that does not reveal it: ``token-`` + 8 hex of its SHA-256."""
    return "token-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def checked_token(secret: str, where: str) -> str:
    """``secret`` if it is long enough; :class:`TokenFileError` naming ``where`` otherwise."""
    if len(secret) < MIN_TOKEN_LENGTH:
        raise TokenFileError(
            f"{where}: token of {len(secret)} characters; use at least {MIN_TOKEN_LENGTH} "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


def read_token_file(path: str | Path) -> list[AdminToken]:
    """Tokens of a file: one per line, ``token`` or ``name token``; ``#`` comments and blank
    lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read the admin token file: {exc.strerror}") from None
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2:
            raise TokenFileError(f"{path}:{number}: expected `token` or `name token`")
        secret = checked_token(words[-1], f"{path}:{number}")
        name = words[0] if len(words) == 2 else token_id(secret)
        tokens.append(AdminToken(name, secret.encode()))
    return tokens


def read_admin_token(
    token_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> str:
    """The admin token to send: the first token of ``token_file`` (or of the file
    ``$CAMPUS_DISPATCH_ADMIN_TOKEN_FILE`` names; a ``name token`` line gives its token), else
    ``$CAMPUS_DISPATCH_ADMIN_TOKEN``; ``""`` when there is none."""
    env = os.environ if env is None else env
    path = token_file or env.get(TOKEN_FILE_ENV)
    if path:
        tokens = read_token_file(path)
        if not tokens:
            raise TokenFileError(f"{path}: no admin token in the file")
        return tokens[0].secret.decode()
    return env.get(TOKEN_ENV, "")
