"""The Typer app and the error policy: bad input is one stderr line and exit code 2."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

try:  # recent Typer vendors Click privately; older Typer depends on Click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from compressbench.errors import CompressbenchError
from compressbench.warnings import collected_warnings

USAGE_ERROR = 2


def fail(message: str) -> None:
    """Print one error line on stderr and exit with the usage-error code."""
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
    sys.exit(USAGE_ERROR)


class OneLineErrorsGroup(TyperGroup):
    """Runs commands in non-standalone mode so errors come back here as exceptions:
    usage errors and :class:`CompressbenchError` become one line and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        # third-party warnings are counted while the command runs and summarised after it, one line each
        with collected_warnings(lambda line: typer.echo(line, err=True)):
            return self._main_one_line_errors(args, prog_name, complete_var, standalone_mode, **extra)

    def _main_one_line_errors(self, args, prog_name, complete_var, standalone_mode, **extra):
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(130)
        except click_exceptions.NoArgsIsHelpError as exc:
            typer.echo(exc.format_message())
            sys.exit(0)
        except click_exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(f"{exc.format_message()}{hint}")
        except click_exceptions.ClickException as exc:
            fail(exc.format_message())
        except CompressbenchError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        if isinstance(result, int) and standalone_mode:
            sys.exit(result)
        return result


app = typer.Typer(
    cls=OneLineErrorsGroup,
    help="Profile, compress and compare keypoint detectors (FOMM's KPDetector is the teacher).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def main() -> None:
    """Console-script entry point."""
    app()
