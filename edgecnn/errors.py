"""Exception types. Every error edgecnn raises on purpose derives from EdgeCNNError.

The CLI prints ``str(error)`` as a single line, so messages say what was wrong
and what to do, without a traceback.
"""

from __future__ import annotations


class EdgeCNNError(Exception):
    """Base class of all edgecnn errors."""


class MissingDependencyError(EdgeCNNError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


class UnknownModelError(EdgeCNNError, LookupError):
    """A model name that is neither in the zoo nor a loadable user model."""


class ModelLoadError(EdgeCNNError):
    """Weights that are not a state dict, do not match, or a factory that fails."""


class PreprocessError(ModelLoadError, ValueError):
    """Preprocessing or labels stated for a model that cannot feed or name it."""


class UnknownTargetError(EdgeCNNError, LookupError):
    """A --target that is neither a backend nor a device profile."""


class ProfileError(EdgeCNNError, ValueError):
    """A device profile (targets/*.toml) that is malformed."""


class ExportError(EdgeCNNError):
    """Conversion of a model to an artifact failed."""


class ParityError(ExportError):
    """An exported artifact disagrees with the PyTorch model beyond tolerance."""


class BundleError(EdgeCNNError):
    """A bundle folder that is missing, incomplete or unwritable."""


class ManifestError(BundleError, ValueError):
    """manifest.json that does not match the schema."""


class ChecksumError(BundleError):
    """An artifact whose sha256 differs from the manifest."""


class InputError(EdgeCNNError, ValueError):
    """Input of the wrong shape, dtype or kind handed to a session."""


class DataError(EdgeCNNError):
    """A dataset or image that is missing, empty, corrupt or of the wrong kind."""


class CalibrationError(EdgeCNNError):
    """Calibration data that is empty, mismatched or corrupt; a budget that cannot be met."""


class BackendUnavailableError(EdgeCNNError):
    """A backend that cannot run on this machine (library or device missing)."""


class EngineMismatchError(BackendUnavailableError):
    """A TensorRT engine built for another GPU / TensorRT version than this machine."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name when it has none):
    library errors often carry pages of context, and the CLI prints one line."""
    for line in str(exc).strip().splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
