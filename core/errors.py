"""Typed errors of the core: every failure an operator can see derives from ``FleetdeckError``.

Errors carry what failed, where, and what to do. They become values (conditions, failed sync entries)
at the engine boundary; none escapes into the console as a traceback.
"""

from __future__ import annotations


class FleetdeckError(Exception):
    """Base of every error fleetdeck reports to an operator.

    Args:
        message: what failed and where, in one sentence.
        title: a short heading for dialogs (``"Render failed"``).
        hint: what the operator can do about it.
    """

    def __init__(self, message: str, *, title: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.title = title or type(self).__name__
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class TemporaryError(FleetdeckError):
    """A failure that may go away by itself; retry after ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float = 1.0, title: str = "", hint: str = "") -> None:
        super().__init__(message, title=title, hint=hint)
        self.delay = delay


class PermanentError(FleetdeckError):
    """A failure that retrying will not fix."""


class ConfigError(PermanentError):
    """The fleet file, a kubeconfig or an option is wrong.

    Args:
        message: what is wrong.
        path: the file.
        line: 1-based line in the file, when known.
        field: dotted path of the offending field, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        field: str = "",
        hint: str = "",
    ) -> None:
        where = path + (f":{line}" if line else "")
        prefix = f"{where}: " if where else ""
        at_field = f"{field}: " if field else ""
        super().__init__(f"{prefix}{at_field}{message}", title="Configuration error", hint=hint)
        self.path = path
        self.line = line
        self.field = field


class ManifestError(PermanentError):
    """A manifest in the config repo cannot be loaded (bad YAML, alias bomb, missing kind…)."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, hint: str = "") -> None:
        where = path + (f":{line}" if line else "")
        super().__init__(f"{where}: {message}" if where else message, title="Invalid manifest", hint=hint)
        self.path = path
        self.line = line


class RenderError(PermanentError):
    """Rendering an app's desired state failed (kustomize error, timeout, missing path)."""


class GitError(FleetdeckError):
    """A Git operation failed (fetch, resolve, checkout)."""


class ClusterError(FleetdeckError):
    """A request to a cluster failed.

    Args:
        message: what failed.
        cluster: the cluster's name.
        status: the HTTP status, when there was a response.
        reason: the API's ``reason`` (``Forbidden``, ``Conflict``, ``Invalid``…).
    """

    def __init__(
        self,
        message: str,
        *,
        cluster: str = "",
        status: int | None = None,
        reason: str = "",
        hint: str = "",
    ) -> None:
        prefix = f"cluster {cluster}: " if cluster else ""
        super().__init__(f"{prefix}{message}", title="Cluster error", hint=hint)
        self.cluster = cluster
        self.status = status
        self.reason = reason

    @property
    def forbidden(self) -> bool:
        """Whether the cluster refused the request for lack of permission."""
        return self.status == 403

    @property
    def not_found(self) -> bool:
        """Whether the object or kind does not exist."""
        return self.status == 404

    @property
    def gone(self) -> bool:
        """Whether a watch's resourceVersion is too old (410 Gone): relist."""
        return self.status == 410

    @property
    def conflict(self) -> bool:
        """Whether a precondition (resourceVersion) failed."""
        return self.status == 409

    @property
    def unauthorized(self) -> bool:
        """Whether the credentials were rejected (expired token, revoked certificate)."""
        return self.status == 401

    @property
    def transient(self) -> bool:
        """Whether retrying may succeed (throttling, server errors, no response)."""
        return self.status is None or self.status == 429 or self.status >= 500


class ReadOnlyError(PermanentError):
    """A mutating request was refused because fleetdeck runs read-only."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"refused in read-only mode: {what}",
            title="Read-only",
            hint="restart without --read-only (and with credentials that may write) to change the fleet",
        )


class JournalError(PermanentError):
    """The operator journal cannot be written; the action it would record is refused."""


class LockedError(PermanentError):
    """Another operator holds the lease for this app or cluster."""

    def __init__(self, message: str, *, holder: str = "", since: str = "") -> None:
        super().__init__(message, title="Locked", hint="wait for the other operation to finish, or ask its holder")
        self.holder = holder
        self.since = since


class DuplicateRequestError(LockedError):
    """The same request (same idempotency key: operation, app, cluster, revision, options) is already
    running; this submit was not carried out again."""

    def __init__(self, message: str, *, holder: str = "", since: str = "") -> None:
        super().__init__(message, holder=holder, since=since)
        self.title = "Duplicate"
        self.hint = "nothing to do: the first submit is running; watch it with `fleetdeck status`"


class NotAcknowledgedError(PermanentError):
    """A sync would replace history (its revision does not descend from the one synced: a force-push, or the
    synced revision is gone) and the operator did not acknowledge it; nothing was changed."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            title="History replaced",
            hint="review the change (`fleetdeck diff APP`, `fleetdeck history APP`), then acknowledge it: "
            "`fleetdeck sync APP --allow-non-descendant`, or the console's confirmation",
        )


class FieldConflictError(NotAcknowledgedError):
    """A sync would take fields over from another field manager (a server-side apply conflict that the
    forced apply would win) and the operator did not confirm it; nothing was changed."""

    def __init__(self, message: str) -> None:
        PermanentError.__init__(
            self,
            message,
            title="Fields owned by another manager",
            hint="review who owns them (`fleetdeck diff APP`), then confirm: "
            "`fleetdeck sync APP --force-conflicts`, or the console's confirmation (a)",
        )
