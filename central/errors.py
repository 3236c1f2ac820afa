"""Narrow exception classes of the central service.

Each maps to one HTTP status in :mod:`central.http_errors`, so a handler raises
what went wrong and never builds an error response by hand.
"""

from __future__ import annotations


class CentralError(Exception):
    """Base class: anything the central service raises on purpose."""

    status = 500


class ConfigError(CentralError):
    """The configuration (file, environment or override) is invalid."""


class MigrationError(CentralError):
    """The database schema could not be brought up to date."""


class BadRequest(CentralError):
    """The request body is not what the endpoint accepts (not a per-event rejection)."""

    status = 400


class Unauthorized(CentralError):
    """No credential, an unknown one, or a revoked one."""

    status = 401


class Forbidden(CentralError):
    """A valid credential acting outside its scope (e.g. another store's feed)."""

    status = 403


class NotFound(CentralError):
    """The customer, store or order does not exist (or was erased)."""

    status = 404


class InvalidName(BadRequest):
    """A credential kind or name that is not allowed (the admin API's 400, the CLI's error)."""


class Conflict(CentralError):
    """An id reused with a different content (e.g. the same order id, another order)."""

    status = 409


class EventRejected(ValueError):
    """One event of a batch is invalid; ``str()`` is the reason sent back to the sender."""


class TooManyRequests(CentralError):
    """A credential over its request rate; ``retry_after`` seconds until the next is allowed."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
