"""Errors a user can cause, each with one clear message; the CLI prints them without a traceback."""


class PolydiffError(Exception):
    """Base class: the message names the field or cause."""


class PluginError(PolydiffError):
    """A plugin could not be loaded or registered something invalid."""


class UnknownNameError(PolydiffError, KeyError):
    """A modality, sampler, schedule, backend or plugin name that nothing registered."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class InvalidInputError(PolydiffError, ValueError):
    """A value that is out of range, of the wrong shape or unreadable."""


class NonFiniteError(PolydiffError, FloatingPointError):
    """A model returned NaN or infinity."""


def one_line(message, empty: str = "") -> str:
    """A message (or an exception's) on one line, whitespace collapsed: what a user sees."""
    fallback = type(message).__name__ if isinstance(message, BaseException) else ""
    return " ".join(str(message).split()) or empty or fallback
