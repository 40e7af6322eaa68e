"""The one exception type of the engines package: the caller shows its message as one line."""


class BackendError(Exception):
    """A backend can't run here (missing runtime, unsupported precision, shape outside a profile, export failed)."""
