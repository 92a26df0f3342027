"""The exception tree of linkis-magic: catch ``LinkisError`` broadly, its subclasses narrowly.

No message built here ever holds a password, token or ticket.
"""

from __future__ import annotations

import builtins


class LinkisError(Exception):
    """Base class of every error this package raises on purpose."""


class AuthError(LinkisError):
    """Login failed, or the session expired and one re-login did not help."""


class ConnectionError(LinkisError, builtins.ConnectionError):
    """The gateway cannot be reached over any transport the client may use."""


class ProtocolError(LinkisError):
    """The server sent something this client cannot make sense of."""


class ServerError(LinkisError):
    """The server answered a request with a non-zero status (Linkis's envelope).

    ``status`` is Linkis's code (1 error, 2 validation failed, 3 no permission, 4 warning),
    ``err_code`` the Linkis error code when the server gave one (20007 empty code, ...).
    """

    def __init__(
        self, message: str, *, status: int = 1, err_code: int | None = None, method: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.err_code = err_code
        self.method = method


class JobError(LinkisError):
    """A job ended Failed, Cancelled or Timeout, or could not be followed to its end."""

    def __init__(
        self,
        message: str,
        *,
        status: str,
        exec_id: str | None = None,
        task_id: int | None = None,
        error_tail: str = "",
    ) -> None:
        details = [f"status {status}"]
        if exec_id:
            details.append(f"execID {exec_id}")
        if task_id is not None:
            details.append(f"taskID {task_id}")
        text = f"{message} ({', '.join(details)})"
        if error_tail:
            text += "\n" + error_tail
        super().__init__(text)
        self.status = status
        self.exec_id = exec_id
        self.task_id = task_id
        self.error_tail = error_tail


class JobCancelled(JobError):
    """The job ended Cancelled (killed by this client, another client or the server)."""


class JobTimeout(JobError):
    """The job ended Timeout on the server, or was killed because a client-side timeout ran out."""
