"""One error type for the local stack: a message that names the cause and the fix."""


class StackError(RuntimeError):
    """A server of the local stack could not be prepared, started or reached.

    The message is written for a person: what went wrong, then what to do about it, and where useful the
    tail of the server's own log.
    """
