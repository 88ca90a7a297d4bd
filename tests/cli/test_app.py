"""The top-level help: workflow order, whole summaries, -h, --version."""

from typer.testing import CliRunner

from compressbench import __version__
from compressbench.cli import app
from compressbench.cli.app import WORKFLOW_ORDER

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"compressbench {__version__}\n"


def test_help_lists_commands_in_workflow_order_with_whole_summaries():
    result = runner.invoke(app, ["-h"])
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:")[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and not line.startswith("    ")]
    assert listed[: len(WORKFLOW_ORDER)] == list(WORKFLOW_ORDER)
    assert "..." not in commands
    assert "3 inconclusive (2: usage error)." in " ".join(commands.split())  # the whole sentence


def test_every_command_has_an_example_and_h():
    for command in [*WORKFLOW_ORDER[:-1], "teacher train", "teacher export"]:
        result = runner.invoke(app, [*command.split(), "-h"])
        assert result.exit_code == 0, command
        assert f"compressbench {command}" in result.stdout.split("Example:")[1], command
