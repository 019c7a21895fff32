"""`memberbot shell --as NAME` with a name no app could send: one line, exit 2."""

from __future__ import annotations

import pytest

from bot.cli import main


@pytest.mark.parametrize("name", ["x" * 129, "al\x07ice"])
def test_shell_refuses_an_unusable_name(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shell", "--as", name]) == 2

    err = capsys.readouterr().err
    assert err == "memberbot: --as NAME must be 1 to 128 characters, no control characters\n"
