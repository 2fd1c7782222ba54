"""Named errors raised to users. Each message says what went wrong and what to do next.

Every error derives from :class:`ColdStartError`, so callers can catch the library's own
failures in one place without swallowing programming errors such as ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Iterable


class ColdStartError(Exception):
    """Base class of every error coldstart-peft raises on purpose."""


class ConfigError(ColdStartError, ValueError):
    """A configuration value is invalid (batch size 0, negative learning rate, unknown field)."""


class PluginError(ColdStartError):
    """A plugin failed to import, register, or run; the message names the plugin."""


class RegistryError(ColdStartError):
    """Base class of registry errors."""


class InvalidNameError(RegistryError, ValueError):
    """A plugin tried to register a name that is not lowercase."""


class DuplicateNameError(RegistryError):
    """Two plugins registered the same method or scorer name."""


class UnknownNameError(RegistryError, KeyError):
    """A method, scorer, dataset or domain name is not known; the message lists the known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        listed = ", ".join(self.known) or "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {listed}")

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return self.args[0]


class DataError(ColdStartError, ValueError):
    """Input data is malformed: missing columns, unknown ids, empty histories, duplicates."""


class MissingColumnsError(DataError):
    """A table lacks required columns."""


class UnknownItemError(DataError):
    """Interactions refer to item ids that are not in the item table."""


class DuplicateIdError(DataError):
    """An id that must be unique appears more than once."""


class EmptyHistoryError(DataError):
    """A user has no interactions where at least one is needed."""


class AdapterError(ColdStartError):
    """An adapter directory cannot be saved or loaded."""


class UnsafeFileError(AdapterError):
    """An adapter directory holds a file type that could execute code when loaded (pickle)."""


class FingerprintMismatchError(AdapterError):
    """An adapter was trained on a different base model than the one it is being loaded onto."""


class CorruptAdapterError(AdapterError):
    """An adapter file is missing, truncated, has wrong shapes or non-finite weights."""


class OutdatedAdapterError(AdapterError):
    """An adapter saved by an older version in a form this one cannot rebuild; it must be retrained."""


class EmptyBankError(AdapterError):
    """An adapter bank has no adapter left to score with (no domain and no global adapter)."""


class StaleIndexError(ColdStartError):
    """A saved item index was built with other adapter weights or another embedding size than the model in use."""


class InputTooLongError(ColdStartError, ValueError):
    """A tokenized input does not fit the model's position budget."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset folder or file is missing; the message says where it was looked for."""


class MalformedFileError(DataError):
    """A data file cannot be parsed at all (wrong format, not just a few bad rows)."""


class WrongFileKindError(DataError):
    """A file is of another kind than the option it was given to reads (labeled pairs as ``--dataset``);
    the message says what the file looks like and which option reads it."""


class EmptyDatasetError(DataError):
    """A dataset loaded with no items or no interactions; the message says what was read and skipped."""


class DataWarning(UserWarning):
    """Input data was read but part of it is not used (a column no field maps); the message names the flag."""


class SplitError(DataError):
    """A cold-start split cannot be built as asked (too few users, unknown domain, bad sizes)."""


class UnsafePathError(AdapterError):
    """A path named by an adapter or bank folder escapes its root (``../``, absolute, symlink out)."""


class CheckpointError(ColdStartError):
    """A training checkpoint cannot be read, or belongs to another run than the one resuming."""


class TrainingDivergedError(ColdStartError):
    """The loss or the weights became NaN or infinite; nothing was saved. Lower the learning rate."""


class OverwriteRefusedError(AdapterError):
    """A command would replace a file or folder it did not write (one that is not an adapter, bank,
    split, report or index of this library)."""


class UnwritableOutputError(ColdStartError):
    """A folder a command must write to (checkpoints, outputs) cannot be created or written."""


class BaseModelUnavailableError(AdapterError):
    """The base model an adapter names is not on this machine, and loading does not download it."""


class SplitMismatchError(DataError):
    """An adapter is evaluated on another split of the data it was trained on: test users it trained on."""


class MissingDependencyError(ColdStartError, ImportError):
    """An optional library a feature needs is not installed; the message gives the pip command."""


class ExportError(ColdStartError):
    """A trained adapter cannot be written in the requested format; the message says what can be."""
