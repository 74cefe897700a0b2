"""Errors raised through the Workspace contract.

Every backend translates its own failures (SQLite, subprocess, HTTP,
``azure.core.exceptions``) into this tree at one boundary, so the CLI and
the console render one family of errors::

    ByomError                     any failure byom reports to a user
     ├── InvalidInput             the caller's input breaks a rule (CLI exit 2, HTTP 400)
     ├── NotFound                 no such model, version, environment, endpoint, ...
     ├── Conflict                 the request clashes with the workspace's state
     │    ├── AlreadyExists       name/version taken
     │    └── InUse               still referenced (model used by a deployment, live traffic)
     ├── Unsupported              this backend cannot do this (capability missing)
     └── BackendError             the backend failed (I/O, a process, the cloud)
          └── AuthFailed          credentials missing or refused

Each error carries a one-line ``message`` that says what went wrong and,
where there is one, ``hint``: what the user can do next.
"""

from __future__ import annotations


class ByomError(Exception):
    """Base of every error byom reports to a user."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class InvalidInput(ByomError):
    exit_code = 2
    http_status = 400


class NotFound(ByomError):
    exit_code = 2
    http_status = 404


class Conflict(ByomError):
    exit_code = 2
    http_status = 409


class AlreadyExists(Conflict):
    pass


class InUse(Conflict):
    pass


class Unsupported(ByomError):
    exit_code = 2
    http_status = 501


class BackendError(ByomError):
    exit_code = 1
    http_status = 502


class AuthFailed(BackendError):
    exit_code = 2
    http_status = 401
