"""Errors a user can cause. Each carries one sentence that says what to do.

The CLI and the web app print ``str(error)`` and nothing else; anything that
is not a ``CoachError`` is a bug and keeps its traceback.
"""


class CoachError(Exception):
    """A problem the user can fix; the message says how."""


class BankError(CoachError):
    """The question bank or glossary does not match its schema."""


class IngestError(CoachError):
    """A document could not be read or has nothing to index."""


class IndexStoreError(CoachError):
    """The index is missing, corrupt or from another embedder."""


class InputError(CoachError):
    """An input (question, answer, query, file) is empty or too large."""
