"""One hierarchy of errors. Every message says what went wrong *and* what to do next."""

from __future__ import annotations


class VstoreError(Exception):
    """Base class: the CLI prints str(error) on one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(VstoreError):
    """A setting or option has an invalid value."""

    exit_code = 2


class DatabaseUnavailable(VstoreError):
    """The server cannot be reached or refuses the login."""


class PgvectorMissing(VstoreError):
    """The server has no pgvector extension, or we may not create it."""


class SchemaNotReady(VstoreError):
    """The database has not been migrated to the revision this vstore needs."""


class ModelMismatch(VstoreError):
    """Vectors from another model or dimension than the one recorded in the database."""


class ModelSwitched(VstoreError):
    """The database switched to another model (`vstore reembed`) after this process loaded its own: it must
    not encode (or cache) with the old one."""


class ModelLoadError(VstoreError):
    """open_clip could not build the model or load its weights."""


class SourceError(VstoreError):
    """A dataset folder, annotation file or manifest cannot be read as a whole."""


class NotFound(VstoreError):
    """An id, dataset, file or index that was asked for does not exist."""


class EmbeddedServerError(VstoreError):
    """The embedded PostgreSQL could not be started or stopped."""


class ImageError(VstoreError):
    """A file or upload cannot be read as an image (missing, corrupt, not an image, too many pixels)."""


class UploadTooLarge(ImageError):
    """An uploaded query image is over `vstore serve`'s size limit."""


class FileNotServed(VstoreError):
    """A stored image whose path leaves its dataset root: searchable, but `vstore serve` does not serve it."""


class UserDataPresent(VstoreError):
    """A benchmark that deletes or adds scratch rows was pointed at a database holding user datasets."""


class DatasetConflict(VstoreError):
    """A dataset name already belongs to another folder or manifest (or the source to another name)."""


class ForeignIndex(VstoreError):
    """A Faiss side index or export made from another database than the one in use."""


class ReadOnlyDatabase(VstoreError):
    """The database role may only read (`vstore db reader`, a standby) and the command must write."""


class LockTimeout(VstoreError):
    """A lock wait passed Settings.lock_timeout; the message names the session that holds the lock."""
