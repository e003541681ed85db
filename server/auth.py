"""Bearer tokens of the admin API: read from the environment or a token file, checked in
constant time against the ``authorization: Bearer <token>`` metadata of a call."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from api.tokens import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    AdminToken,
    TokenFileError,
    checked_token,
    read_token_file,
)

__all__ = ["AdminAuth", "AdminToken", "AuthError", "TokenFileError"]


class AuthError(Exception):
    """A call without a valid admin token (UNAUTHENTICATED); the message says what is wrong."""


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
            tokens.append(
                AdminToken("env", checked_token(env[TOKEN_ENV], f"${TOKEN_ENV}").encode())
            )
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
