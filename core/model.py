"""Value types shared by every layer of the core and handed to the console.

Everything here is immutable (frozen, slotted dataclasses holding tuples and read-only mappings), so a
snapshot can cross from the engine thread to the UI thread without copying or locking. This module
imports nothing from fleetdeck and performs no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NewType

ClusterName = NewType("ClusterName", str)
AppName = NewType("AppName", str)

EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


def frozen_mapping(values: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> Mapping[str, Any]:
    """Return a read-only copy of ``values``."""
    return MappingProxyType(dict(values))


# ---------------------------------------------------------------------------------------------- identity


@dataclass(frozen=True, slots=True, order=True)
class ResourceKey:
    """Identity of a Kubernetes object, without its version (as gitops-engine and Flux do).

    ``namespace`` is ``""`` for cluster-scoped kinds and ``group`` is ``""`` for the core API group.
    """

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        scope = f"{self.namespace}/" if self.namespace else ""
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{scope}{self.name}"

    @property
    def short(self) -> str:
        """``Kind/namespace/name`` without the group, for narrow columns."""
        scope = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{scope}{self.name}"

    @classmethod
    def parse(cls, text: str) -> ResourceKey:
        """Parse ``KIND[.GROUP]/NAMESPACE/NAME`` or ``KIND[.GROUP]/NAME`` (cluster-scoped).

        Raises:
            ValueError: when the text has not two or three ``/``-separated parts.
        """
        parts = text.split("/")
        if len(parts) == 3:
            kind_group, namespace, name = parts
        elif len(parts) == 2:
            kind_group, name = parts
            namespace = ""
        else:
            raise ValueError(f"expected KIND/NAMESPACE/NAME or KIND/NAME, got {text!r}")
        kind, _, group = kind_group.partition(".")
        if not kind or not name:
            raise ValueError(f"expected KIND/NAMESPACE/NAME or KIND/NAME, got {text!r}")
        return cls(group=group, kind=kind, namespace=namespace, name=name)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ResourceKey:
        """The key of a raw object (``apiVersion``, ``kind``, ``metadata``)."""
        api_version = str(obj.get("apiVersion") or "")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(
            group=group,
            kind=str(obj.get("kind") or ""),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
        )


# ---------------------------------------------------------------------------------------------- vocabularies


class HealthStatus(StrEnum):
    """Health of a resource or an app, best to worst (gitops-engine ``healthOrder``)."""

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        """Position in the best-to-worst order."""
        return _HEALTH_ORDER.index(self)

    def is_worse_than(self, other: HealthStatus) -> bool:
        """Whether this status ranks below ``other``."""
        return self.rank > other.rank

    @staticmethod
    def worst_of(statuses: Iterable[HealthStatus], default: HealthStatus | None = None) -> HealthStatus:
        """The worst of ``statuses``; ``default`` (Healthy unless given) when there are none."""
        worst = default or HealthStatus.HEALTHY
        for status in statuses:
            if status.is_worse_than(worst):
                worst = status
        return worst


_HEALTH_ORDER = list(HealthStatus)


class ResourceState(StrEnum):
    """Whether one resource on one cluster matches Git."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    MISSING = "Missing"
    """In Git, not in the cluster."""
    EXTRANEOUS = "Extraneous"
    """Owned by the app in the cluster, no longer in Git (a prune candidate)."""
    INVALID = "Invalid"
    """Git's version is rejected (schema, immutable field, bad YAML value)."""
    UNKNOWN = "Unknown"
    """Could not be compared (cluster unreachable, no permission, render failed)."""

    @property
    def drifted(self) -> bool:
        """Whether a sync would change something for this resource."""
        return self in (ResourceState.OUT_OF_SYNC, ResourceState.MISSING, ResourceState.EXTRANEOUS)


class SyncStatus(StrEnum):
    """An app's roll-up of its resources' states."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"

    @staticmethod
    def of(states: Iterable[ResourceState]) -> SyncStatus:
        """Unknown if any resource is Unknown or Invalid, OutOfSync if any drifted, else Synced."""
        result = SyncStatus.SYNCED
        for state in states:
            if state in (ResourceState.UNKNOWN, ResourceState.INVALID):
                return SyncStatus.UNKNOWN
            if state.drifted:
                result = SyncStatus.OUT_OF_SYNC
        return result


class ConnectionState(StrEnum):
    """How well fleetdeck currently sees a cluster."""

    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DEGRADED = "Degraded"
    """Some kinds cannot be listed or watched (permissions, a broken aggregated API)."""
    THROTTLED = "Throttled"
    """The API server answers but asks to wait (429 Too Many Requests with Retry-After) for some kinds;
    their objects are kept, stale, until it lets the lists through."""
    UNREACHABLE = "Unreachable"


class SyncAction(StrEnum):
    """What a sync did (or would do) to one resource."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    PRUNE_SKIPPED = "prune-skipped"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING = "pending"

    @property
    def failed(self) -> bool:
        """Whether this entry counts as a failure of the operation."""
        return self is SyncAction.FAILED


class OperationPhase(StrEnum):
    """Lifecycle of a sync or rollback (gitops-engine ``OperationPhase``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"

    @property
    def completed(self) -> bool:
        """Whether the operation has ended, successfully or not."""
        return self in (OperationPhase.SUCCEEDED, OperationPhase.FAILED, OperationPhase.ERROR)

    @property
    def successful(self) -> bool:
        """Whether the operation ended successfully."""
        return self is OperationPhase.SUCCEEDED


class SyncPhase(StrEnum):
    """Argo CD's sync phases, in the order a sync runs them (``SyncFail`` only when the sync fails)."""

    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"

    @property
    def rank(self) -> int:
        """Position in the run order (PreSync 0 … SyncFail 3)."""
        return list(SyncPhase).index(self)


class SyncTrigger(StrEnum):
    """What started a recorded sync."""

    MANUAL = "manual"
    """An operator (console or command line)."""
    AUTOMATED = "automated"
    """Automated sync of a new revision."""
    SELF_HEAL = "self-heal"
    """Automated sync undoing drift from the revision already synced."""
    UNKNOWN = ""
    """Recorded before fleetdeck recorded what started a sync."""


class Severity(StrEnum):
    """Severity of an app or cluster condition."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Health:
    """A health verdict with the reason an operator should read."""

    status: HealthStatus
    message: str = ""
    source: str = ""
    """Where the verdict came from: ``built-in: Deployment``, ``kstatus conditions``, or the health script
    that gave it (``script: apps/Deployment/health.lua``); empty when nothing judged it."""


@dataclass(frozen=True, slots=True)
class Condition:
    """Something an operator must know about an app or cluster (render error, no permission, stale)."""

    type: str
    message: str
    severity: Severity = Severity.WARNING


@dataclass(frozen=True, slots=True)
class Revision:
    """A Git commit the desired state was rendered from. Only ``sha`` is ever deployed by."""

    sha: str
    ref: str = ""
    committed_at: float | None = None
    """Commit time as a Unix timestamp."""
    author: str = ""
    subject: str = ""

    @property
    def short(self) -> str:
        """The first 8 characters of the SHA."""
        return self.sha[:8]


def display_path(pointer: str) -> str:
    """A JSON pointer (``/metadata/labels/a~1b``) as a readable path (``metadata.labels["a/b"]``)."""
    if not pointer:
        return "(whole object)"
    out = ""
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if part.isdigit():
            out += f"[{part}]"
        elif part and all(c.isalnum() or c in "-_" for c in part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One drifted field, its two values (secrets already masked) and who last wrote it."""

    path: str
    """JSON pointer into the object, e.g. ``/spec/replicas``."""
    op: str
    """``add`` (only in Git), ``remove`` (only live, or owned by fleetdeck and removed from Git), ``replace``."""
    desired: Any
    live: Any
    manager: str | None = None
    """The field manager that last wrote the live value (from ``managedFields``)."""
    time: str | None = None
    """When that manager wrote it (RFC 3339, from ``managedFields``)."""
    note: str = ""
    """What caused the difference when the core can tell: ``changed in Git`` (live holds what fleetdeck
    applied), ``order differs`` (an associative list the apply would reorder), ``not set live``, ``removed
    from Git`` (fleetdeck applied it before); empty when another manager changed the live value."""

    @property
    def cause(self) -> str:
        """The cause as an operator reads it: the note, else ``changed by <manager>`` (``at <time>``)."""
        if self.note:
            return self.note
        if not self.manager:
            return f"{self.op} (writer unknown)"
        return f"changed by {self.manager}" + (f" at {self.time}" if self.time else "")

    @property
    def display_path(self) -> str:
        """The path as an operator reads it: ``spec.containers[0].image``,
        ``metadata.labels["app.kubernetes.io/name"]`` (never JSON-pointer escapes such as ``~1``)."""
        return display_path(self.path)


@dataclass(frozen=True, slots=True)
class ResourceDiff:
    """Desired against live for one resource, after normalization and masking."""

    state: ResourceState
    changes: tuple[FieldChange, ...] = ()
    approximate: bool = False
    """True for the local structural comparison, False for the server-side apply dry run."""
    strategy: str = "local"
    """``ssa-dry-run`` or ``local``."""
    message: str = ""
    warnings: tuple[str, ...] = ()
    desired: Mapping[str, Any] | None = None
    """Normalized, masked desired object (predicted live for the dry run), for display."""
    live: Mapping[str, Any] | None = None
    """Normalized, masked live object, for display; when a local comparison found changes, live projected
    onto the fields the manifest sets (plus fleetdeck's pending removals), so server defaults never show."""


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    """Everything known about one resource of one app on one cluster."""

    key: ResourceKey
    api_version: str
    state: ResourceState
    health: Health | None
    """None for kinds without a health rule (ConfigMap, Secret…)."""
    diff: ResourceDiff
    wave: int = 0
    parent: ResourceKey | None = None
    """The owner shown above it in the resource tree (a Deployment above its ReplicaSet)."""
    managed: bool = True
    """False for objects shown only as children (ReplicaSets, Pods) that fleetdeck does not apply."""


@dataclass(frozen=True, slots=True)
class AppControl:
    """Operator control state of an app on a cluster, stored in that cluster."""

    paused: bool = False
    reason: str = ""
    by: str = ""
    at: float | None = None
    expires_at: float | None = None
    pinned: str | None = None
    """The SHA a rollback pinned the app to; desired state is rendered from it instead of the branch."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One recorded, full, successful sync or rollback."""

    id: int
    revision: str
    kind: str
    """``sync`` or ``rollback``."""
    by: str
    at: float
    result: str
    summary: str = ""
    """E.g. ``2 created, 1 configured, 1 pruned``."""
    trigger: SyncTrigger = SyncTrigger.UNKNOWN
    """What started it: an operator, automation, or self-heal (a rollback is always an operator's)."""

    @property
    def label(self) -> str:
        """``manual sync``, ``automated sync``, ``self-heal sync``, ``rollback``, or ``sync`` when unknown."""
        if self.kind == "rollback":
            return "rollback"
        return f"{self.trigger.value} sync" if self.trigger is not SyncTrigger.UNKNOWN else "sync"


def newest_first(history: Iterable[HistoryEntry]) -> tuple[HistoryEntry, ...]:
    """``history`` newest first: by id, which the store assigns in the order entries are written (operators'
    clocks may disagree; the order of writes to the one ConfigMap does not), then by time."""
    return tuple(sorted(history, key=lambda h: (h.id, h.at), reverse=True))


@dataclass(frozen=True, slots=True)
class SyncResultEntry:
    """What an operation did to one resource."""

    key: ResourceKey
    action: SyncAction
    message: str = ""
    wave: int = 0
    phase: SyncPhase = SyncPhase.SYNC
    hook: bool = False
    """A hook (``argocd.argoproj.io/hook`` or a mapped Helm hook): run, not kept as a resource of the app."""


@dataclass(frozen=True, slots=True)
class OperationState:
    """Progress or result of a sync or rollback, published in the snapshot while it runs."""

    id: str
    app: AppName
    cluster: ClusterName
    kind: str
    """``sync`` or ``rollback``."""
    revision: str
    phase: OperationPhase
    message: str = ""
    entries: tuple[SyncResultEntry, ...] = ()
    dry_run: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    by: str = ""

    def count(self, action: SyncAction) -> int:
        """How many entries ended with ``action``."""
        return sum(1 for entry in self.entries if entry.action is action)

    @property
    def summary(self) -> str:
        """``2 created, 1 configured, 1 failed`` (actions with no entries left out)."""
        parts = [f"{self.count(a)} {a.value}" for a in SyncAction if self.count(a)]
        return ", ".join(parts) or "nothing to do"


class Owner(StrEnum):
    """Who applies an app's objects on a cluster (``docs/owners.md``)."""

    FLEETDECK = "fleetdeck"
    """fleetdeck renders and applies (its own sync path)."""
    ARGOCD = "argocd"
    """An Argo CD ``Application`` does; fleetdeck acts through it."""
    FLUX = "flux"
    """A Flux ``Kustomization`` or ``HelmRelease`` does; fleetdeck acts through it."""


@dataclass(frozen=True, slots=True)
class FluxObjectStatus:
    """What a Flux object's status says (a Kustomization, HelmRelease, their source, a ResourceSet), as shown on the row, the app screen and ``status -o json``."""

    key: ResourceKey
    ready: str
    """``True``, ``False`` or ``Unknown`` (the Ready condition's status; Unknown when there is none)."""
    reason: str
    message: str
    stalled: bool
    reconciling: bool
    suspended: bool
    last_applied_revision: str
    last_attempted_revision: str
    """For a source: its artifact's revision (``main@sha1:…``)."""
    inventory: int
    """How many objects a Kustomization's ``status.inventory`` lists (0 for other kinds)."""
    depends_on: tuple[str, ...]
    source: ResourceKey | None
    paused_by_fleetdeck: bool
    pause_reason: str
    pinned_commit: str
    """``spec.ref.commit`` of a GitRepository (a rollback pin when ``pinned_from`` is set)."""
    pinned_from: str
    """The original ``spec.ref`` fleetdeck recorded when it pinned the source (JSON), else ""."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``status -o json``)."""
        return {
            "kind": self.key.kind, "namespace": self.key.namespace, "name": self.key.name, "ready": self.ready,
            "reason": self.reason, "message": self.message, "stalled": self.stalled,
            "reconciling": self.reconciling, "suspended": self.suspended,
            "last_applied_revision": self.last_applied_revision,
            "last_attempted_revision": self.last_attempted_revision, "inventory": self.inventory,
            "depends_on": list(self.depends_on), "source": None if self.source is None else str(self.source),
            "paused_by_fleetdeck": self.paused_by_fleetdeck, "pause_reason": self.pause_reason,
            "pinned_commit": self.pinned_commit, "pinned_from": self.pinned_from,
        }

    @property
    def summary(self) -> str:
        """One line: ``Ready main@sha1:abc1234``, ``Suspended``, ``Stalled: <reason>``…"""
        if self.suspended:
            head = "Suspended"
        elif self.stalled:
            head = f"Stalled: {self.reason}" if self.reason else "Stalled"
        elif self.reconciling:
            head = "Reconciling"
        elif self.ready == "True":
            head = "Ready"
        elif self.ready == "False":
            head = f"Not ready: {self.reason}" if self.reason else "Not ready"
        else:
            head = "Unknown"
        revision = _short_flux_revision(self.last_applied_revision or self.last_attempted_revision)
        return f"{head} {revision}".strip()


def _short_flux_revision(revision: str) -> str:
    """``main@sha1:0123456789ab…`` → ``main@sha1:0123456``."""
    ref, sep, digest = revision.rpartition(":")
    return f"{ref}{sep}{digest[:7]}" if sep and len(digest) > 7 else revision


@dataclass(frozen=True, slots=True)
class ControllerRef:
    """The controller object that owns an app on a cluster (an Argo CD Application, a Flux Kustomization…)
    and the cluster it lives in (a hub's Argo CD deploys to other clusters)."""

    owner: Owner
    cluster: ClusterName
    key: ResourceKey

    def __str__(self) -> str:
        where = f"{self.key.namespace}/" if self.key.namespace else ""
        return f"{self.key.kind} {where}{self.key.name}"


@dataclass(frozen=True, slots=True)
class ControllerResource:
    """One resource as the owning controller reports it (Argo CD ``status.resources``)."""

    key: ResourceKey
    sync: str = ""
    """``Synced``, ``OutOfSync``… as the controller says."""
    health: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    """The owning controller's own view of the app (Argo CD ``Application.status``), shown beside
    fleetdeck's comparison, never mixed into it."""

    sync: str = ""
    """``Synced``/``OutOfSync``/``Unknown`` (Argo CD ``status.sync.status``)."""
    revision: str = ""
    """The revision the controller compared against (``status.sync.revision``)."""
    health: str = ""
    health_message: str = ""
    conditions: tuple[Condition, ...] = ()
    operation_phase: str = ""
    """``status.operationState.phase`` (Running, Succeeded, Failed, Error, Terminating), or ``""``."""
    operation_message: str = ""
    operation_revision: str = ""
    operation_pending: bool = False
    """An operation was requested (``operation`` set) and the controller has not taken it yet."""
    automated: bool = False
    """The controller's automated sync is on (Argo CD ``spec.syncPolicy.automated``)."""
    resources: tuple[ControllerResource, ...] = ()
    reconciled_at: str = ""
    generated_by: str = ""
    """The ApplicationSet that generated the Application (its ownerReference), e.g. ``ApplicationSet argocd/envs``."""
    pause_expired: bool = False
    """fleetdeck paused the controller with an expiry that has passed: automation resumes it (restores what the
    pause removed), as a fleetdeck pause of its own app simply ends."""


@dataclass(frozen=True, slots=True)
class ControllerPatch:
    """One write to a controller object: a JSON merge patch (RFC 7386), shown in the plan exactly as sent."""

    cluster: ClusterName
    key: ResourceKey
    patch: Mapping[str, Any]
    summary: str
    """What it does, e.g. ``set operation.sync{revision: abc123, prune: true}``."""

    @property
    def text(self) -> str:
        """The patch body as sent (canonical JSON)."""
        import json

        return json.dumps(_plain(self.patch), sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:
        where = f"{self.key.namespace}/" if self.key.namespace else ""
        return f"{self.key.kind} {where}{self.key.name}: {self.summary}"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class AppStatus:
    """One application on one cluster: the row the console shows."""

    app: AppName
    cluster: ClusterName
    namespace: str
    path: str
    """Source path in the config repo, after the per-cluster template was filled."""
    sync: SyncStatus
    health: Health
    revision: Revision | None
    """The revision the desired state was rendered from (the pin when pinned)."""
    resources: tuple[ResourceStatus, ...] = ()
    conditions: tuple[Condition, ...] = ()
    control: AppControl = field(default_factory=AppControl)
    operation: OperationState | None = None
    history: tuple[HistoryEntry, ...] = ()
    """Recorded syncs and rollbacks, oldest first as stored; ``newest_first`` for display."""
    synced_revision: str | None = None
    """The SHA of the last recorded successful sync, if any."""
    behind: int = 0
    """Commits between the pinned revision and the branch head (0 when not pinned)."""
    stale: bool = False
    """True when the cluster is unreachable and this is its last known state."""
    approximate: bool = False
    """True when any resource was compared locally rather than by the server's dry run."""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAPPING)
    """The cluster's labels (env, region…), for filtering and grouping."""
    owner: Owner = Owner.FLEETDECK
    """Who applies the app's objects here: detected from the cluster, or the fleet file's override."""
    controller: ControllerRef | None = None
    """The owning controller object (None for fleetdeck, or an override that names no object found)."""
    controller_status: ControllerStatus | None = None
    """What the owning controller reports (sync, revision, health, conditions, operation, resources); its
    ``status.history`` is ``history`` (with who initiated each sync)."""
    automated: bool = False
    """The app's sync policy asks for automated sync."""
    revision_stale: bool = False
    """The config repo cannot be fetched now: ``revision`` is the last one fetched (a ``RevisionStale``
    condition says why); show it marked as such, never as ``-``."""
    depends_on: tuple[str, ...] = ()
    """Apps this one comes after (Flux ``dependsOn``, the fleet file's ``dependsOn``): an ordering shown to
    the operator; syncs are not blocked on it."""
    flux: tuple[FluxObjectStatus, ...] = ()
    """Owner ``flux``: the owning Kustomization/HelmRelease's status, then its source's (docs/flux.md)."""
    non_descendant: str = ""
    """Set when the desired revision (the branch head, not a pin) does not descend from ``synced_revision``
    (a force-push, or the synced revision no longer exists in the repo): the message names both revisions.
    A sync of it needs an explicit acknowledgement; automated syncs wait for an operator."""
    loading: bool = False
    """Listed from the fleet file before the engine has evaluated it (``core.engine.loading_snapshot``):
    sync and health are Unknown because nothing is known yet, and the console says "loading", never a
    state. The engine's own snapshots never set it."""

    @property
    def id(self) -> tuple[AppName, ClusterName]:
        """Stable identity of the row."""
        return (self.app, self.cluster)

    @property
    def running_revision(self) -> str | None:
        """The revision whose content runs on the cluster: the desired one while the app is Synced (a later
        commit that renders the same objects runs as much as the one last synced), else the last revision
        synced there (None when fleetdeck never synced it). REVISION, the matrix and ``status`` show it."""
        if self.sync is SyncStatus.SYNCED and self.revision is not None:
            return self.revision.sha
        return self.synced_revision

    @property
    def drift_count(self) -> int:
        """Resources a sync would change."""
        return sum(1 for r in self.resources if r.managed and r.state.drifted)


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """Connection state of one cluster."""

    name: ClusterName
    connection: ConnectionState
    server: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAPPING)
    since: float | None = None
    """When the connection entered its current state (Unix time)."""
    message: str = ""
    read_only: bool = False
    objects: int = 0
    """Objects held in the live cache."""
    impersonating: str = ""
    """Who requests to this cluster are sent as (``"alice (groups ops)"``, Kubernetes impersonation);
    ``""``: the credentials' own identity."""
    listing: str = ""
    """Lists under way and how far they got (``listing ConfigMap: 1,500 objects so far``); ``""`` when none."""


@dataclass(frozen=True, slots=True)
class RepoStatus:
    """The config repository as last fetched."""

    url: str
    branch: str
    head: Revision | None = None
    fetched_at: float | None = None
    error: str = ""
    """Why the last fetch failed; the last good head stays in use."""
    warning: str = ""
    """E.g. a force-push: the new head does not descend from the previous one."""
    rendering: int = 0
    """App targets being rendered right now (a new commit touching many apps: shown as progress)."""


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Immutable picture of the whole fleet at one moment: the only thing the console reads."""

    generation: int
    taken_at: float
    apps: tuple[AppStatus, ...] = ()
    clusters: tuple[ClusterStatus, ...] = ()
    repo: RepoStatus | None = None
    read_only: bool = False
    conditions: tuple[Condition, ...] = ()
    lag: float = 0.0
    """Seconds from the first change this snapshot reflects (a watch event, a render, a verdict) to its
    publication: about the publish interval normally, more when the engine is starved of CPU."""

    def app(self, app: str, cluster: str) -> AppStatus | None:
        """The row for ``app`` on ``cluster``, if any."""
        for status in self.apps:
            if status.app == app and status.cluster == cluster:
                return status
        return None

    def cluster(self, name: str) -> ClusterStatus | None:
        """The connection state of cluster ``name``, if any."""
        for status in self.clusters:
            if status.name == name:
                return status
        return None


# ---------------------------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One resource a sync will touch, in order."""

    key: ResourceKey
    action: SyncAction
    """``created``, ``configured``, ``pruned``, ``unchanged`` or ``prune-skipped`` (predicted)."""
    wave: int = 0
    reason: str = ""
    phase: SyncPhase = SyncPhase.SYNC
    """The sync phase the step runs in; the wave orders steps inside it."""
    hook: bool = False
    """A hook: created (and waited for) in its phase, deleted by its delete policy, never drift."""


@dataclass(frozen=True, slots=True)
class FieldTakeover:
    """One field a sync takes over from another field manager: the live value was written by ``manager``
    and the forced server-side apply sets it to Git's value (and makes fleetdeck its owner)."""

    key: ResourceKey
    path: str
    """JSON pointer into the object, e.g. ``/spec/replicas``."""
    manager: str
    """The field manager that owns the live value (untrusted: from the cluster's ``managedFields``)."""

    @property
    def display_path(self) -> str:
        """The path as an operator reads it (``spec.replicas``)."""
        return display_path(self.path)

    def __str__(self) -> str:
        """``apps/Deployment/ns/web /spec/replicas owned by hpa`` (the journal's form)."""
        return f"{self.key} {self.path} owned by {self.manager}"


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a sync of one app on one cluster will do, shown to the operator before it runs."""

    app: AppName
    cluster: ClusterName
    revision: str
    steps: tuple[PlanStep, ...]
    prune: bool = False
    dry_run: bool = False
    kind: str = "sync"
    """``sync`` or ``rollback``."""
    selected: tuple[ResourceKey, ...] = ()
    """Non-empty for a selective sync (not recorded in history)."""
    force_replace: bool = False
    blocked: str = ""
    """Why the plan must not run (render failed, cluster stale, empty render…); empty when it may."""
    warnings: tuple[str, ...] = ()
    synced_revision: str = ""
    """The revision last synced on the cluster (what the sync replaces), when known."""
    non_descendant: str = ""
    """Set when ``revision`` does not descend from ``synced_revision`` (a force-push, or the synced revision
    is gone from the repo): the message names both revisions. Such a sync runs only when acknowledged."""
    non_descendant_allowed: bool = False
    """The operator's explicit acknowledgement of ``non_descendant`` (``--allow-non-descendant``)."""
    takeovers: tuple[FieldTakeover, ...] = ()
    """Fields another field manager owns live that this sync sets to Git's value: the forced server-side
    apply takes them over from that manager. Such a sync runs only when confirmed (``takeovers_allowed``)."""
    takeovers_allowed: bool = False
    """The operator's explicit confirmation of ``takeovers`` (``--force-conflicts``, the console's ``a``)."""
    owner: Owner = Owner.FLEETDECK
    """Whose path runs the plan: fleetdeck's own sync, or a write to the owning controller's object."""
    patches: tuple[ControllerPatch, ...] = ()
    """For a controller-owned app: exactly the writes the plan makes, in order (nothing else is written)."""

    @property
    def needs_acknowledgement(self) -> bool:
        """Whether running this plan is refused until the operator acknowledges ``non_descendant`` (a dry
        run writes nothing and needs none)."""
        return bool(self.non_descendant) and not self.non_descendant_allowed and not self.dry_run

    @property
    def needs_takeover_confirmation(self) -> bool:
        """Whether running this plan is refused until the operator confirms taking fields over from other
        field managers (a dry run writes nothing and needs none)."""
        return bool(self.takeovers) and not self.takeovers_allowed and not self.dry_run

    @property
    def takeover_summary(self) -> str:
        """``takes over 2 fields from hpa, 1 field from kubectl-edit`` (empty when nothing is taken over)."""
        counts: dict[str, int] = {}
        for takeover in self.takeovers:
            counts[takeover.manager] = counts.get(takeover.manager, 0) + 1
        if not counts:
            return ""
        parts = [f"{n} field{'s' if n != 1 else ''} from {manager}" for manager, n in sorted(counts.items())]
        return "takes over " + ", ".join(parts)

    @property
    def phased(self) -> bool:
        """Whether the plan has hooks or steps outside the Sync phase (then it is shown phase by phase)."""
        return any(s.hook or s.phase is not SyncPhase.SYNC for s in self.steps)

    def count(self, action: SyncAction) -> int:
        """How many steps will ``action``."""
        return sum(1 for step in self.steps if step.action is action)

    @property
    def request_key(self) -> str:
        """The idempotency key of the request this plan carries out: the same kind of operation of the same
        app on the same cluster to the same revision, with the same options and resources. Two submits
        with one key are one request (a key repeat, or two operators asking for the same thing): the
        second is told it is a duplicate rather than that the app is locked. Step actions are left out
        (they change while the first submit runs)."""
        import hashlib

        resources = sorted({str(step.key) for step in self.steps} | {str(k) for k in self.selected})
        words = [self.kind, self.app, self.cluster, self.revision, f"prune={self.prune}",
                 f"force_replace={self.force_replace}", f"selective={bool(self.selected)}", *resources]
        return hashlib.sha256("\n".join(words).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One line of an app's Kubernetes Events: identical events (same type, reason, message and object)
    folded into one, with their counts summed. Every string comes from the cluster (untrusted)."""

    type: str
    """``Warning`` or ``Normal`` (anything else as the cluster sent it)."""
    reason: str
    message: str
    object: ResourceKey
    """The object the event concerns (``involvedObject`` / ``regarding``)."""
    count: int = 1
    first_seen: float | None = None
    """Unix time the event was first seen, when the cluster says."""
    last_seen: float | None = None
    """Unix time the event was last seen (its age is measured from here)."""
    source: str = ""
    """The component that reported it (``kubelet``, ``deployment-controller``…)."""

    @property
    def warning(self) -> bool:
        """A Warning (shown first)."""
        return self.type == "Warning"


@dataclass(frozen=True, slots=True)
class AppEvents:
    """The Kubernetes Events of an app's objects and of the objects they own, on one cluster: Warnings
    first, then newest first, at most a capped number of lines."""

    app: AppName
    cluster: ClusterName
    events: tuple[EventRecord, ...] = ()
    listed: bool = False
    """The cluster's events were listed at least once (else nothing is known yet)."""
    error: str = ""
    """Why the events cannot be read now (``events not readable: forbidden``); the last known lines stay."""
    omitted: int = 0
    """Lines left out beyond the cap (oldest Normal ones first)."""
    taken_at: float = 0.0

    @property
    def warnings(self) -> int:
        """Warning lines shown."""
        return sum(1 for e in self.events if e.warning)
