"""Tunable settings of the core, with the reasoning behind each default."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How live state is listed and watched."""

    page_size: int = 500
    """Objects per list page (Argo CD's page size): bounds memory during a relist."""
    fleet_list_concurrency: int = 32
    """Concurrent lists in the whole process, every cluster together (``core.live.list_gate``, K7): a 410
    storm over 500 clusters relists 32 kinds at a time, not 2,000; each cluster still takes at most
    ``LIST_CONCURRENCY`` (4) of them."""
    watch_timeout: tuple[int, int] = (240, 290)
    """Server-side watch timeout, randomized in this range so reconnects do not align."""
    read_timeout: float = 180.0
    """Seconds a watch may stay silent before it is dropped and resumed (socket read timeout too).

    Tied to bookmarks: kube-apiserver 1.36 sends the first bookmark of a quiet watch after ~120 s,
    then one every 60 s and one 2 s before ``timeoutSeconds`` (measured, docs/reliability.md), so a
    healthy watch is never silent this long; a half-open one is, and resumes. A hung server is
    noticed much sooner by the heartbeat, which marks the cluster stale."""
    connect_timeout: float = 5.0
    """A cluster that does not accept a connection (TCP and TLS) in this time is reported unreachable."""
    request_timeout: float = 20.0
    """Total deadline of every non-watch request (list page, get, apply, dry run, review): a server
    that accepted the connection and then froze cannot block a caller longer than this."""
    qps: float = 50.0
    """Client-side limit on requests per second to one cluster (a token bucket, like client-go's), so a
    relist storm or a large sync cannot flood an API server; 0 turns it off."""
    burst: int = 100
    """Requests that may go at once after a quiet spell (the bucket's size)."""
    heartbeat_interval: float = 2.0
    """Seconds between heartbeats (``GET /version``) of a watched cluster."""
    heartbeat_timeout: float = 3.0
    """A heartbeat not answered within this time marks the cluster stale (connection not Connected),
    so a frozen API server shows within ``heartbeat_interval + heartbeat_timeout`` seconds. While it
    stays frozen a heartbeat is always waiting (pings start at most ``heartbeat_interval`` apart, the
    next at once after a timeout), so it shows Connected again as soon as it answers."""
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    """Reconnect backoff (full jitter) between these bounds."""
    resync_interval: float = 600.0
    """Forced relist as a safety net (Argo CD's watch resync)."""
    unreachable_after: float = 30.0
    """A cluster whose lists keep failing this long is Unreachable rather than Degraded."""
    list_only: bool = False
    """List each kind once and open no watch (one-shot verbs: a settled snapshot is all they need)."""


@dataclass(frozen=True, slots=True)
class GitSettings:
    """How the config repo is fetched and rendered."""

    fetch_interval: float = 60.0
    """Seconds between fetches of a remote repo."""
    render_timeout: float = 30.0
    """Kustomize builds taking longer are killed and reported."""
    max_manifest_bytes: int = 10 * 1024 * 1024
    """Per-app cap on rendered YAML (Argo CD's repo-server default)."""
    render_memory_limit: int = 2 * 1024 * 1024 * 1024
    """Address-space cap on one kustomize build (a normal build needs under 1 GiB; an input that
    slipped past the screening budgets dies here instead of taking the machine)."""


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """How syncs are run."""

    field_manager: str = "fleetdeck"
    concurrency: int = 8
    """Applies in flight per cluster within one wave."""
    crd_established_timeout: float = 60.0
    request_retries: int = 3
    """Attempts for a transient error (429, 5xx, reset) per request."""
    history_limit: int = 10
    """Recorded syncs kept per app (Argo CD's default)."""


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Custom health checks (Argo CD ``health.lua`` scripts) and the budgets each call runs under."""

    customizations: tuple[str, ...] = ()
    """Where scripts come from, first wins: directories laid out like Argo CD's ``resource_customizations``
    or argocd-cm ConfigMap files. ``FLEETDECK_RESOURCE_CUSTOMIZATIONS`` and the fleet file's
    ``health.customizations`` add theirs after these (``core.desired.health_scripts``)."""
    script_instructions: int = 10_000_000
    """Lua VM instructions one call may run: a health check needs a few thousand; 10 million take about
    0.1 s, so a script stuck in a loop fails in well under the time limit."""
    script_memory: int = 32 * 1024 * 1024
    """Bytes one call may allocate beyond what the runtime held before it, the tables of the object parts
    the script reads included: a check builds a few small tables, and an object is at most ~1.5 MiB."""
    script_seconds: float = 1.0
    """Wall time one call may take (Argo CD's own limit for a Lua script)."""


@dataclass(frozen=True, slots=True)
class Impersonation:
    """``fleetdeck --as USER [--as-group GROUP]…``: every request to every cluster is sent as ``user``
    (Kubernetes user impersonation; the API server's audit log records both identities)."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """All settings of the engine."""

    watch: WatchSettings = field(default_factory=WatchSettings)
    git: GitSettings = field(default_factory=GitSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    publish_interval: float = 0.1
    """Snapshots are published at most this often (``core.aio.Throttle``): a change after a quiet interval is
    published at once, and a burst within an interval costs one recompute at its end."""
    read_only: bool = False
    one_shot: bool = False
    """A one-shot verb (status, diff, sync…): kinds are listed once and no watch is opened, no Git
    polling, no automated syncs, and server-side dry runs settled before the first snapshot is returned."""
    only_apps: frozenset[str] | None = None
    """Evaluate only these apps (every app when None): a verb about one app renders only that app."""
    impersonate: Impersonation | None = None
    """Send every request as this identity instead of the kubeconfig's (never in read-only mode)."""
    memory_limit: int | None = None
    """fleetdeck's own memory budget in bytes of resident memory (``--memory-limit``): approaching it, what
    can be re-read is dropped and a ``MemoryLimit`` warning shown (``core.memory``). None: derived from the
    cgroup's limit and ``RLIMIT_AS`` when set, else off; 0: off."""
    memory_check_interval: float = 1.0
    """Seconds between checks of the memory budget (besides the one at each publish)."""


def default_settings() -> EngineSettings:
    """Settings with every default."""
    return EngineSettings()
