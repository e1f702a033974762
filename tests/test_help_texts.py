"""Help texts read as a user's text: every command's ``--help`` and every operation of the API
docs (``/docs``, from the OpenAPI schema) carry no notes meant for developers (a docstring's
"Long because …" reasons, Sphinx cross-references and issue numbers stop at a ``\\f`` line, which
Click and FastAPI both cut at), and the commands' paragraphs are reflowed to the terminal's
width rather than broken where the source's lines end."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from aggregator.api.app import create_app
from aggregator.cli.app import app
from aggregator.config import Settings
from aggregator.store.db import make_engine

#: What a reader of the help must not meet: a function-length reason, a Sphinx role, an issue.
DEVELOPER_NOTES = re.compile(r"Long because|:(?:mod|func|class|meth|data|attr):`|\bissue \d+", re.I)


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group`` (a Click group as Typer builds it), groups included."""
    found = [path]
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


ROOT: Any = typer.main.get_command(app)
COMMANDS = _commands(ROOT)


def _summary(path: tuple[str, ...]) -> str:
    """The command's first paragraph as written in its source, spaces normalised."""
    command = ROOT
    for name in path:
        command = command.commands[name]
    text = (command.help or "").partition("\f")[0].strip().split("\n\n")[0]
    return " ".join(text.split())


def test_every_command_is_listed() -> None:
    # the tree the parametrized test walks is the real one
    assert {("fetch",), ("trends",), ("backfill",), ("users", "add"), ("library", "import")} <= set(COMMANDS)
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "aggregator")
def test_help_is_for_users_and_reflowed(path: tuple[str, ...]) -> None:
    out = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": "240", "NO_COLOR": "1"}, terminal_width=240
    )
    assert out.exit_code == 0, out.output
    assert not DEVELOPER_NOTES.search(out.output), out.output
    assert "\f" not in out.output
    summary = _summary(path).replace("`", "")  # Markdown: `code` is shown without its quotes
    assert summary, f"{' '.join(path)} has no help text"
    lines = [" ".join(line.strip(" │").split()) for line in out.output.splitlines()]
    assert summary in " ".join(lines), (summary, out.output)
    if len(summary) < 220:
        # on a 240-column terminal the summary fits on one line: printed whole, not cut where
        # the docstring's source lines end (Rich's mode kept those breaks)
        assert any(summary in line for line in lines), (summary, out.output)
    # a group lists its commands with their summaries, each on one line of the wide table
    children = [c for c in COMMANDS if len(c) == len(path) + 1 and c[: len(path)] == path]
    for child in children:
        listed = _summary(child).replace("`", "")
        if len(listed) < 180:
            assert any(listed in line for line in lines), (listed, out.output)


def test_api_docs_are_for_users(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    url = f"sqlite:///{tmp_path / 'docs.db'}"
    spec = create_app(Settings(database_url=url, feeds_file=feeds), make_engine(url)).openapi()  # type: ignore[call-arg]
    operations = [(m.upper(), path, op) for path, ops in spec["paths"].items() for m, op in ops.items()]
    assert len(operations) > 40
    described = 0
    for method, path, op in operations:
        text = f"{op.get('summary', '')}\n{op.get('description', '')}"
        assert not DEVELOPER_NOTES.search(text), (method, path, text)
        assert "\f" not in text, (method, path)
        described += bool(op.get("description"))
    # the routes' docstrings are the docs: most operations say what they do
    assert described > 0.8 * len(operations)
