"""Section 9: the test snippets pass when run as the page says."""

import subprocess

from support import ROOT, argv, commands


def test_shown_pytest_command_passes() -> None:
    result = subprocess.run(
        argv(commands("testing.console")[0]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    assert "4 passed" in result.stdout
