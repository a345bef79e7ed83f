"""'Before you start': the Python version and the pinned requirements."""

import sys
import tomllib
from importlib.metadata import version

from packaging.requirements import Requirement
from support import ROOT, commands, snippet

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_requirements_file_is_the_snippets_group() -> None:
    shown = snippet("requirements.txt").splitlines()
    assert shown == PYPROJECT["dependency-groups"]["snippets"]


def test_each_requirement_is_pinned_to_the_version_tested() -> None:
    for line in snippet("requirements.txt").splitlines():
        requirement = Requirement(line)
        (pin,) = requirement.specifier  # Exactly one: ==version.
        assert pin.operator == "=="
        assert version(requirement.name) == pin.version, requirement.name


def test_the_python_named_is_the_oldest_supported_and_tested() -> None:
    page = (ROOT / "docs/source/before-you-start.rst").read_text(encoding="utf-8")
    assert "You need Python 3.11 or newer" in page
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    assert sys.version_info >= (3, 11)


def test_a_second_terminal_activates_the_same_environment() -> None:
    _, activate, _ = commands("venv.console")
    assert commands("activate.console") == [activate]
