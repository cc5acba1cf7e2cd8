"""The one exception type users see as a one-line message."""


class ChurnError(Exception):
    """A problem with the user's input (file, column, key) rather than a bug.

    The message is shown as is, on one line, and the process exits non-zero.
    """
