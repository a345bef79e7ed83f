"""snippets/handshake.py, the "Try it" of chapter 1, imported and called."""

import handshake
from support import commands
from terminal import session


def test_it_prints_the_status_line_and_the_accept_key(serve, capsys, monkeypatch):
    server = serve(commands("echo.console")[0])
    monkeypatch.setattr(handshake, "PORT", server.port)
    handshake.main()
    _, shown = session("handshake.console")
    assert capsys.readouterr().out.splitlines() == shown[1:]
