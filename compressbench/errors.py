"""The one exception type the CLI turns into a single stderr line and exit code 2."""


class CompressbenchError(Exception):
    """Bad input from the user: an unknown name, a missing file, an impossible option.

    The message must say what was wrong and what to do; the CLI prints it as one line.
    """


class UnknownNameError(CompressbenchError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CompressbenchWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. a skipped unreadable file).
    The CLI prints each as one ``warning:`` line on stderr."""
