"""The exception types of the engines package: the caller shows their message as one line."""


class BackendError(Exception):
    """A backend can't run here (missing runtime, unsupported precision, shape outside a profile, export failed)."""


class PrecisionError(BackendError):
    """An explicit precision this backend can't run natively on this machine (the message says what can)."""
