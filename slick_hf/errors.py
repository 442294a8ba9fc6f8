"""The one exception type the CLI turns into a single error line, and the helper that words causes."""


class SlickError(Exception):
    """A user-facing error: bad input, unreachable server, impossible request."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
