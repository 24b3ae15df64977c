"""The one exception type for user errors.

The CLI turns a ``ResdiagError`` into one line on stderr and exit code 2
(docs/design.md, "Errors"). Library callers catch it like any exception.
"""


class ResdiagError(Exception):
    """A request resdiag cannot carry out as asked: bad depth, bad syntax, missing file...

    The message is a single line that says what is wrong and, where possible, how to fix it.
    """
