"""Section 3: the Python client, run with the commands the page shows."""

import runpy
from importlib.metadata import version

import echo_client
from packaging.requirements import Requirement
from support import SNIPPETS, commands, run, snippet


def test_install_command_names_what_is_installed() -> None:
    install, _ = commands("echo_client.console")
    *_, spec = install.split()
    requirement = Requirement(spec.strip('"'))
    assert install.startswith("python -m pip install ")
    assert requirement.specifier.contains(version(requirement.name))


def test_client_prints_what_the_page_shows(serve) -> None:
    server = serve(commands("echo.console")[0])
    _, client = commands("echo_client.console")
    result = run(client, server)
    assert result.returncode == 0, result.stderr
    assert result.stdout == snippet("echo_client_output.txt")


def test_client_main_takes_a_url(serve, capsys) -> None:
    server = serve(commands("echo.console")[0])
    echo_client.main(f"{server.ws_url}/ws")
    assert capsys.readouterr().out == snippet("echo_client_output.txt")


def test_without_port_the_client_calls_localhost_5042(monkeypatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    fresh = runpy.run_path(str(SNIPPETS / "echo_client.py"))
    assert fresh["DEFAULT_URL"] == "ws://localhost:5042/ws"
