"""The one exception type the CLI turns into a single error line, and the helpers that word causes."""


class SlickError(Exception):
    """A user-facing error: bad input, unreachable server, impossible request."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_positive(config: object, *names: str) -> None:
    """Raise SlickError naming the first of `names` (fields of `config`) that is set and below 1."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise SlickError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
