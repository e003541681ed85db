"""Admin token files and variables: the file format (named and unnamed tokens, comments, blank
lines), the minimum length, errors that name the file and line, and which token a client sends
(its own file, then the file the environment names, then the token in the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.tokens import (
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    AdminToken,
    TokenFileError,
    checked_token,
    read_admin_token,
    read_token_file,
    token_id,
)

SECRET_A = "alpha-0123456789abcdef"
SECRET_B = "bravo-0123456789abcdef"
SECRET_C = "charlie-0123456789abcdef"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------------ the file format
def test_named_and_unnamed_tokens_comments_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tokens",
        f"# the ops team\n\nalice {SECRET_A}   # on call\n   \n{SECRET_B}\n#{SECRET_C}\n",
    )
    tokens = read_token_file(path)
    assert tokens == [
        AdminToken("alice", SECRET_A.encode()),
        AdminToken(token_id(SECRET_B), SECRET_B.encode()),
    ]  # the commented-out token is not read


def test_an_unnamed_token_is_logged_under_a_name_that_does_not_reveal_it() -> None:
    name = token_id(SECRET_A)
    assert name == token_id(SECRET_A)  # the same token always gets the same name
    assert name != token_id(SECRET_B)
    assert name.startswith("token-") and len(name) == len("token-") + 8
    assert SECRET_A not in name and SECRET_A[:8] not in name


def test_a_line_of_three_words_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "tokens", f"alice {SECRET_A}\nbob {SECRET_B} extra\n")
    with pytest.raises(TokenFileError, match=r"tokens:2: expected `token` or `name token`"):
        read_token_file(path)


def test_a_short_token_is_refused_with_its_length_line_and_a_hint(tmp_path: Path) -> None:
    short = "x" * (MIN_TOKEN_LENGTH - 1)
    path = write(tmp_path / "tokens", f"# header\nalice {short}\n")
    with pytest.raises(TokenFileError) as err:
        read_token_file(path)
    message = str(err.value)
    assert f"tokens:2: token of {MIN_TOKEN_LENGTH - 1} characters" in message
    assert f"at least {MIN_TOKEN_LENGTH}" in message
    assert short not in message  # the token itself is not shown


def test_the_minimum_length_is_inclusive() -> None:
    ok = "y" * MIN_TOKEN_LENGTH
    assert checked_token(ok, "here") == ok
    with pytest.raises(TokenFileError, match=r"^there: "):
        checked_token(ok[1:], "there")


def test_a_missing_file_is_a_token_file_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "tokens"
    with pytest.raises(TokenFileError, match="cannot read the admin token file") as err:
        read_token_file(path)
    assert str(path) in str(err.value)


name_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)
secret_chars = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=",
    min_size=MIN_TOKEN_LENGTH,
    max_size=48,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=st.lists(st.tuples(st.one_of(st.none(), name_chars), secret_chars), max_size=6),
    comments=st.booleans(),
)
def test_token_files_round_trip(
    tmp_path: Path, entries: list[tuple[str | None, str]], comments: bool
) -> None:
    """Whatever tokens a file lists, in whichever form, are read back in order."""
    lines = []
    for name, secret in entries:
        line = secret if name is None else f"{name} {secret}"
        lines.append(f"{line}  # added by ops" if comments else line)
        if comments:
            lines.append("# ---")
    path = write(tmp_path / "round-trip", "\n".join(lines) + "\n")
    tokens = read_token_file(path)
    assert [t.secret.decode() for t in tokens] == [s for _, s in entries]
    assert [t.name for t in tokens] == [token_id(s) if n is None else n for n, s in entries]


# -------------------------------------------------------------- which token a client sends
def test_precedence_explicit_file_then_env_file_then_env_token(tmp_path: Path) -> None:
    own = write(tmp_path / "own", f"mine {SECRET_A}\n{SECRET_B}\n")
    named = write(tmp_path / "named", f"{SECRET_B}\n")
    env = {TOKEN_FILE_ENV: str(named), TOKEN_ENV: SECRET_C}
    assert read_admin_token(own, env) == SECRET_A  # the first token, without its name
    assert read_admin_token(None, env) == SECRET_B
    assert read_admin_token(None, {TOKEN_ENV: SECRET_C}) == SECRET_C
    assert read_admin_token(None, {}) == ""
    assert read_admin_token(str(own), {}) == SECRET_A  # a path given as text


def test_an_empty_token_file_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty", "# nothing here yet\n\n")
    with pytest.raises(TokenFileError, match="no admin token in the file"):
        read_admin_token(empty, {TOKEN_ENV: SECRET_C})
    with pytest.raises(TokenFileError, match="no admin token in the file"):
        read_admin_token(None, {TOKEN_FILE_ENV: str(empty), TOKEN_ENV: SECRET_C})


def test_an_empty_file_variable_falls_back_to_the_env_token() -> None:
    assert read_admin_token(None, {TOKEN_FILE_ENV: "", TOKEN_ENV: SECRET_C}) == SECRET_C


def test_the_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    monkeypatch.setenv(TOKEN_ENV, SECRET_C)
    assert read_admin_token() == SECRET_C
    monkeypatch.setenv(TOKEN_FILE_ENV, str(write(tmp_path / "t", f"{SECRET_A}\n")))
    assert read_admin_token() == SECRET_A
