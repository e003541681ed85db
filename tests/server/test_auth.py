"""Admin bearer tokens on the server side, without a server: where :class:`AdminAuth` reads its
tokens (a file, the environment, both), how it reads the ``authorization`` metadata of a call
(scheme, spaces, wrong and partial tokens), that every token is compared, and that no tokens
means the admin API is disabled. The token file format itself is tested in
tests/api/test_tokens.py."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.tokens import (
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    AdminToken,
    TokenFileError,
    read_token_file,
    token_id,
)
from server.auth import AdminAuth, AuthError

TOKEN = "ops-token-0123456789abcdef"
OTHER = "dev-token-fedcba9876543210"


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"authorization": f"{scheme} {token}"}


def test_tokens_from_env_and_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# ops team\nalice {TOKEN}\n\n{'b' * 20}  # unnamed\n")
    tokens = read_token_file(path)
    assert tokens[0] == AdminToken("alice", TOKEN.encode())
    assert tokens[1].name == token_id("b" * 20) and "b" * 20 not in tokens[1].name
    auth = AdminAuth.from_env({"CAMPUS_DISPATCH_ADMIN_TOKEN": "c" * 16}, token_file=path)
    assert [t.name for t in auth.tokens] == ["alice", token_id("b" * 20), "env"]
    assert auth.check({"authorization": f"bearer {TOKEN}"}) == "alice"
    assert auth.check({"authorization": "Bearer " + "c" * 16}) == "env"
    with pytest.raises(AuthError, match="wrong"):
        auth.check({"authorization": "Bearer " + "c" * 15})
    path.write_text("short\n")
    with pytest.raises(TokenFileError, match=r"tokens:1: token of 5 characters"):
        read_token_file(path)
    with pytest.raises(TokenFileError, match="CAMPUS_DISPATCH_ADMIN_TOKEN"):
        AdminAuth.from_env({"CAMPUS_DISPATCH_ADMIN_TOKEN": "abc"})
    assert not AdminAuth.from_env({}).enabled


# ------------------------------------------------------------------------------ from_env
def test_the_file_the_environment_names_and_the_source(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice {TOKEN}\n")
    auth = AdminAuth.from_env({TOKEN_FILE_ENV: str(path)})
    assert auth.tokens == (AdminToken("alice", TOKEN.encode()),)
    assert auth.source == str(path) and auth.enabled
    both = AdminAuth.from_env({TOKEN_FILE_ENV: str(path), TOKEN_ENV: OTHER})
    assert [t.name for t in both.tokens] == ["alice", "env"]
    assert both.source == f"{path} and ${TOKEN_ENV}"
    only_env = AdminAuth.from_env({TOKEN_ENV: OTHER})
    assert only_env.tokens == (AdminToken("env", OTHER.encode()),)
    assert only_env.source == f"${TOKEN_ENV}"


def test_an_explicit_token_file_wins_over_the_one_the_environment_names(tmp_path: Path) -> None:
    mine, named = tmp_path / "mine", tmp_path / "named"
    mine.write_text(f"mine {TOKEN}\n")
    named.write_text(f"named {OTHER}\n")
    auth = AdminAuth.from_env({TOKEN_FILE_ENV: str(named)}, token_file=mine)
    assert [t.name for t in auth.tokens] == ["mine"]
    assert auth.source == str(mine)


def test_empty_variables_configure_nothing() -> None:
    auth = AdminAuth.from_env({TOKEN_FILE_ENV: "", TOKEN_ENV: ""})
    assert auth.tokens == () and auth.source == "" and not auth.enabled


def test_the_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert AdminAuth.from_env().check(bearer(TOKEN)) == "env"
    monkeypatch.delenv(TOKEN_ENV)
    assert not AdminAuth.from_env().enabled


def test_a_missing_or_bad_token_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read the admin token file"):
        AdminAuth.from_env({}, token_file=tmp_path / "nowhere")
    bad = tmp_path / "bad"
    bad.write_text(f"alice {TOKEN}\nbob {'x' * (MIN_TOKEN_LENGTH - 1)}\n")
    with pytest.raises(TokenFileError, match=r"bad:2: token of"):
        AdminAuth.from_env({TOKEN_FILE_ENV: str(bad)})


def test_a_short_environment_token_names_the_variable_not_the_token() -> None:
    short = "s" * (MIN_TOKEN_LENGTH - 1)
    with pytest.raises(TokenFileError) as err:
        AdminAuth.from_env({TOKEN_ENV: short})
    assert f"${TOKEN_ENV}" in str(err.value) and short not in str(err.value)


# --------------------------------------------------------------------------------- check
def test_without_tokens_every_call_is_refused_with_how_to_enable_it() -> None:
    auth = AdminAuth()
    assert not auth.enabled
    for metadata in ({}, bearer(TOKEN)):
        with pytest.raises(AuthError) as err:
            auth.check(metadata)
        message = str(err.value)
        assert "admin API is disabled" in message
        assert TOKEN_ENV in message and TOKEN_FILE_ENV in message


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        TOKEN,  # no scheme
        f"Basic {TOKEN}",
        f"Bearer{TOKEN}",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        f"Token {TOKEN}",
    ],
)
def test_a_call_without_a_bearer_token_is_told_how_to_send_one(header: str | None) -> None:
    auth = AdminAuth([AdminToken("ops", TOKEN.encode())])
    metadata = {} if header is None else {"authorization": header}
    with pytest.raises(AuthError, match="missing admin token: send metadata `authorization"):
        auth.check(metadata)


@pytest.mark.parametrize(
    "presented",
    [OTHER, TOKEN[:-1], TOKEN + "x", TOKEN.upper(), f"{TOKEN} {TOKEN}", "x" * len(TOKEN)],
)
def test_a_wrong_or_partial_token_is_refused(presented: str) -> None:
    auth = AdminAuth([AdminToken("ops", TOKEN.encode())])
    with pytest.raises(AuthError, match=r"^wrong admin token$"):
        auth.check(bearer(presented))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive_and_spaces_around_the_token_are_ignored(
    scheme: str,
) -> None:
    auth = AdminAuth([AdminToken("ops", TOKEN.encode())])
    assert auth.check(bearer(TOKEN, scheme)) == "ops"
    assert auth.check({"authorization": f"{scheme}   {TOKEN}  "}) == "ops"


def test_the_name_of_the_matching_token_is_returned_and_the_first_one_wins() -> None:
    auth = AdminAuth(
        [
            AdminToken("ops", TOKEN.encode()),
            AdminToken("dev", OTHER.encode()),
            AdminToken("ops-copy", TOKEN.encode()),
        ]
    )
    assert auth.check(bearer(OTHER)) == "dev"
    assert auth.check(bearer(TOKEN)) == "ops"


def test_every_token_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: the first token matching does not end the loop early."""
    calls: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr("server.auth.hmac.compare_digest", counting)
    secrets = [f"token-{k}-0123456789abcdef".encode() for k in range(4)]
    auth = AdminAuth([AdminToken(f"t{k}", s) for k, s in enumerate(secrets)])
    assert auth.check(bearer(secrets[0].decode())) == "t0"
    assert calls == secrets
    calls.clear()
    with pytest.raises(AuthError):
        auth.check(bearer(OTHER))
    assert calls == secrets


secret = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=",
    min_size=MIN_TOKEN_LENGTH,
    max_size=40,
)


@settings(max_examples=50, deadline=None)
@given(
    secrets=st.lists(secret, min_size=1, max_size=5, unique=True),
    pick=st.integers(0, 4),
    stranger=secret,
)
def test_exactly_the_configured_tokens_are_accepted(
    secrets: list[str], pick: int, stranger: str
) -> None:
    auth = AdminAuth([AdminToken(f"n{k}", s.encode()) for k, s in enumerate(secrets)])
    k = pick % len(secrets)
    assert auth.check(bearer(secrets[k])) == f"n{k}"
    if stranger not in secrets:
        with pytest.raises(AuthError, match="wrong"):
            auth.check(bearer(stranger))
