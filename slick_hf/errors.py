"""The one exception type the CLI turns into a single error line and a non-zero exit."""


class SlickError(Exception):
    """A user-facing error: bad input, unreachable server, impossible request."""
