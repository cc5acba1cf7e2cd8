"""The one exception type users see as a one-line message."""


class ChurnError(Exception):
    """A problem with the user's input (file, column, key) rather than a bug.

    The message is shown as is, on one line, and the process exits non-zero.
    """


CLIP = 80  # characters of a user's value echoed in a message


def clip(text: object, limit: int = CLIP) -> str:
    """``text`` as a string, cut to ``limit`` characters with the full length noted.

    Messages echo user values (a YAML scalar, a CSV cell); a huge one must not make
    a huge message, and a newline in one must not start a line of its own (which could
    say anything, "error: ..." too): control characters are shown escaped, as a backslash and n.
    """
    text = escape(str(text))
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def escape(text: str) -> str:
    r"""``text`` with each control character shown as its escape (``\n``, ``\x00``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
