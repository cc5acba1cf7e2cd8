"""A non-UTF-8 locale for tests of code that must not depend on the user's locale."""

import contextlib
import locale
import sys
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def ascii_locale() -> Iterator[None]:
    """Run the block in the plain C (ASCII) locale, then restore the one before.

    `open()` without an encoding follows this locale, so code that forgets its encoding
    fails here as it would for a Latin-1 or cp1252 user.
    """
    if sys.flags.utf8_mode:
        # Python started in a C or POSIX locale turns UTF-8 mode on (PEP 540): open()
        # then reads UTF-8 whatever the locale, so no ASCII user can be played here.
        pytest.skip("Python runs in UTF-8 mode (started in a C or POSIX locale)")
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getpreferredencoding(False) == "ANSI_X3.4-1968"
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
