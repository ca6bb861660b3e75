"""The errors a user can cause and fix: ``DeltapropError`` and its kinds.

Every error that the library raises for bad input — a setting out of range, unusable data, a
model file that does not load, training that diverged — is a :class:`DeltapropError`, and also
the built-in exception a Python user expects (``ValueError``, ``TypeError``, ``OSError`` or
``ArithmeticError``), so ``except ValueError`` keeps working. The command line turns exactly
these into one line ``error: …``; any other exception is a bug and keeps its traceback.

Messages are one line that names what was wrong, what was expected and what was given:
"`lr` must be > 0; got -0.1", "train.csv, line 7, column 'age': 'abc' is not a number".
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "DataError",
    "DeltapropError",
    "FileWriteError",
    "ModelFileError",
    "TrainingDiverged",
]


class DeltapropError(Exception):
    """Base of every error a user can cause and fix (the CLI prints it as one line)."""


class ConfigError(DeltapropError, ValueError):
    """A setting or argument has a value deltaprop cannot use (e.g. ``lr=-0.1``)."""


class ConfigTypeError(ConfigError, TypeError):
    """A setting or argument has the wrong type (e.g. ``sizes="3,2"``)."""


class DataError(DeltapropError, ValueError):
    """A data file or its contents is unusable.

    The message is one line naming the file (when there is one) and the problem, e.g.
    ``"train.csv: column 'label' not found; columns are a, b, c"``.
    """


class ModelFileError(DeltapropError, ValueError):
    """A model file is missing, malformed, foreign, or does not match its metadata."""


class FileWriteError(DeltapropError, OSError):
    """An output file (model, predictions, picture) cannot be written where it was asked."""


class TrainingDiverged(DeltapropError, ArithmeticError):
    """The loss became NaN or infinite; the network keeps its last finite weights."""
