"""The Typer app and the error policy: bad input is one stderr line and exit code 2."""

from __future__ import annotations

import re
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
# the order a new user needs them: look, measure, compress, compare many, report, guard, train
WORKFLOW_ORDER = ("models", "machine", "profile", "evaluate", "compress", "distill", "search", "sensitivity", "bench", "report", "baseline", "check", "teacher")


def fail(message: str) -> None:
    """Print one error line on stderr and exit with the usage-error code."""
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
    sys.exit(USAGE_ERROR)


class WorkflowGroup(TyperGroup):
    """Lists commands in workflow order, each with its whole one-line summary."""

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        ordered = [name for name in WORKFLOW_ORDER if name in names]
        return ordered + [name for name in names if name not in ordered]

    def format_commands(self, ctx, formatter) -> None:
        """Each command with its whole first paragraph (click would cut it at 45 characters)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary_of(command.help or command.short_help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class OneLineErrorsGroup(WorkflowGroup):
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
        except Exception as exc:
            line = one_line_failure(exc)
            if line is None:
                raise
            fail(line)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        if isinstance(result, int) and standalone_mode:
            sys.exit(result)
        return result


def one_line_failure(exc: Exception) -> str | None:
    """The error line for the failures that are not a :class:`CompressbenchError` but still the
    user's input, else None (a bug: its traceback is shown).

    - :class:`~compressbench.runtimes.RuntimeUnavailable`: the model or precision cannot run on the
      chosen runtime. Comparisons keep going with a row note; a command that runs one model on one
      runtime (profile, a check's entry, the reference row of a comparison) has nothing to show.
    - running out of memory: the sizes asked for (``--input-size``, ``--batch``) are too large here.

    Modules are looked up, not imported: an exception of a module that was never loaded cannot be
    one of its classes, and ``--help`` stays free of torch."""
    runtimes = sys.modules.get("compressbench.runtimes.base")
    if runtimes is not None and isinstance(exc, runtimes.RuntimeUnavailable):
        return str(exc) or "the model cannot run on this runtime and precision; try --runtime torch"
    torch = sys.modules.get("torch")
    out_of_memory = isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError))
    if out_of_memory or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)):
        asked = re.search(r"allocate (\d+) bytes", str(exc))
        size = f" (a tensor of {int(asked.group(1)) / 2**30:,.1f} GiB)" if asked else ""
        return f"not enough memory for what was asked{size}; use a smaller --input-size, --batch or --frames"
    return None


def summary_of(help_text: str) -> str:
    """The first paragraph of a command's help, on one line."""
    return " ".join(help_text.strip().split("\n\n")[0].split())


app = typer.Typer(
    cls=OneLineErrorsGroup,
    help=(
        "Profile, compress and compare keypoint detectors (FOMM's KPDetector is the teacher).\n\n"
        "\b\nA first session:\n"
        "  compressbench models\n"
        "  compressbench profile --model teacher\n"
        "  compressbench compress --method exact,quantize --out small.pt\n"
        "  compressbench bench benchmarks/suite.toml -o results.json && compressbench report results.json"
    ),
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from compressbench import __version__

        typer.echo(f"compressbench {__version__}")
        raise typer.Exit()


def _cap_isa(value: str | None) -> str | None:
    """Run this command with the kernels' ISA capped: torch and the runtimes read the cap once, at
    their first kernel choice, and the package has loaded torch by now, so the process re-executes
    itself with the variables set (unless they already are); the fingerprint then names the cap."""
    if value is None:
        return None
    import os

    from compressbench.profiling.machine import isa_cap_environment

    try:
        variables = isa_cap_environment(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if all(os.environ.get(name) == setting for name, setting in variables.items()):
        return value
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "compressbench", *sys.argv[1:]], {**os.environ, **variables})
    return value  # pragma: no cover (execve does not return)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
    max_isa: str = typer.Option(
        None, "--max-isa", callback=_cap_isa, metavar="<isa>",
        help="time as a CPU without the newer instructions would: avx2 | avx2_vnni | avx512_core | avx512_core_vnni | "
        "avx512_core_bf16 (sets ONEDNN_MAX_CPU_ISA and ATEN_CPU_CAPABILITY; results name the cap, and OpenVINO's few "
        "kernels of its own ignore it)",
    ),  # fmt: skip
) -> None:
    """Options before the command name."""


def main() -> None:
    """Console-script entry point."""
    app()
