"""Errors a user can cause and fix. The CLI prints them as one line, no traceback."""


class ImgclfError(Exception):
    """Base class: a problem with the user's input (config, data, run folder).

    Its text is always one line: control characters that came in with the user's input (a key
    with a newline in it, a file name) are shown escaped, never printed raw."""

    def __str__(self) -> str:
        text = super().__str__()
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ConfigError(ImgclfError):
    """A config key or value is unknown, of the wrong type or out of range."""


class DataError(ImgclfError):
    """A data file is missing, corrupt or of an unexpected format."""


class BudgetError(ImgclfError):
    """A model has more trainable parameters than the cap the user set (train.max_params)."""


class RunError(ImgclfError):
    """A run folder is missing, incomplete or would be overwritten."""
