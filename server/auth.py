"""Bearer tokens of the admin API: read from the environment or a token file, checked in
constant time against the ``authorization: Bearer <token>`` metadata of a call."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
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


class AuthError(Exception):
    """A call without a valid admin token (UNAUTHENTICATED); the message says what is wrong."""


@dataclass(frozen=True)
class AdminToken:
    """One accepted token and the name changes made with it are logged under."""

    name: str
    secret: bytes


def token_id(secret: str) -> str:
    """A name for an unnamed token that does not reveal it: ``token-`` + 8 hex of its SHA-256."""
    return "token-" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def _checked(secret: str, where: str) -> str:
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
        secret = _checked(words[-1], f"{path}:{number}")
        name = words[0] if len(words) == 2 else token_id(secret)
        tokens.append(AdminToken(name, secret.encode()))
    return tokens


class AdminAuth:
    """The admin tokens a server accepts; no tokens means the admin API is disabled.

    Parameters
    ----------
    tokens
        The accepted tokens.
    source
        Where they came from (for messages), e.g. the file path.
    """

    def __init__(self, tokens: Sequence[AdminToken] = (), source: str = "") -> None:
        self.tokens = tuple(tokens)
        self.source = source

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, token_file: str | Path | None = None
    ) -> AdminAuth:
        """Tokens from ``token_file`` (or the file ``$CAMPUS_DISPATCH_ADMIN_TOKEN_FILE`` names)
        plus ``$CAMPUS_DISPATCH_ADMIN_TOKEN`` (named ``env``)."""
        env = os.environ if env is None else env
        tokens: list[AdminToken] = []
        sources = []
        path = token_file or env.get(TOKEN_FILE_ENV) or None
        if path:
            tokens += read_token_file(path)
            sources.append(str(path))
        if env.get(TOKEN_ENV):
            tokens.append(AdminToken("env", _checked(env[TOKEN_ENV], f"${TOKEN_ENV}").encode()))
            sources.append(f"${TOKEN_ENV}")
        return cls(tokens, " and ".join(sources))

    @property
    def enabled(self) -> bool:
        """Whether any token is configured."""
        return bool(self.tokens)

    def check(self, metadata: Mapping[str, str]) -> str:
        """The name of the token the call's ``authorization`` metadata carries.

        Every configured token is compared (in constant time), whether or not an earlier one
        matched, so the time taken does not tell which or how much of a token was right.

        Raises
        ------
        AuthError
            The admin API is disabled, or the metadata has no bearer token, or a wrong one.
        """
        if not self.tokens:
            raise AuthError(
                f"the admin API is disabled on this server: no admin token configured (set "
                f"${TOKEN_ENV} or ${TOKEN_FILE_ENV}, or serve --admin-token-file, and restart)"
            )
        header = metadata.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AuthError("missing admin token: send metadata `authorization: Bearer <token>`")
        given = presented.strip().encode()
        found = ""
        for token in self.tokens:
            if hmac.compare_digest(given, token.secret) and not found:
                found = token.name
        if not found:
            raise AuthError("wrong admin token")
        return found
