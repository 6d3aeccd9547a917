"""Leases in the destination cluster: one automation owner per cluster, one operator per app at a time.

* ``fleetdeck-system/fleetdeck-automation``: only its holder runs automated syncs and self-heal on that
  cluster. Held for 30 s, renewed every 10 s; an expired lease is taken over by the next fleetdeck.
* ``fleetdeck-system/fleetdeck-op-<app>``: taken for a manual sync or rollback and released after it;
  renewed in the background while the operation runs. A second operator gets ``LockedError`` naming the
  holder (``<os_user>@<host>:<pid>``), the operation and since when.

Each lease write is a conditional write: ``create`` for a new Lease (409 when someone else created it
first) and server-side apply carrying the ``metadata.resourceVersion`` that was read (409 when someone
else wrote in between); a conflict re-reads and decides again. This is the same protocol as client-go's
and ``kubernetes.aio``'s leader election, written on the ``KubeAPI`` protocol instead of depending on
``kubernetes.aio.leaderelection``: that module needs generated models and a real ``ApiClient``, while
this one also runs against the simulated cluster, and leases here need an operation token besides the
holder (two operations in one process must still exclude each other).

Time is the API server's: ``renewTime`` is written and expiry judged on the clock the server shows in
its answers (``KubeAPI.server_time``), not the bastion's. Two fleetdecks whose clocks disagree by minutes
still agree on whether a lease is live; the estimate is good to about a second (the ``Date`` header's
resolution), which only shortens or lengthens a takeover by that much.

Dead holders on this host: every lease written here names its process in annotations (hostname, pid,
the kernel's boot id, the pid namespace and the process's start time). A lease held by a process on
*this* host (same hostname, boot id and pid namespace) that no longer exists (no such pid, a zombie, or
the pid now belongs to a process started at another time) is taken over at once instead of after its
duration, and the takeover is reported (``on_takeover``; operations journal it as "released lock of
dead process PID"). A holder on another host, or one whose liveness cannot be judged (annotations
missing, /proc unreadable), still blocks until its lease expires.

Constraint: only Lease objects in ``fleetdeck-system`` are written here.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import math
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from core.aio import create_guarded_task, stop_tasks
from core.errors import ClusterError, DuplicateRequestError, LockedError
from core.journal import OperatorIdentity
from core.live.api import JSON, APIResource, KubeAPI
from core.settings import SyncSettings
from core.sync.retry import conflict_pause, with_retries
from core.sync.state import MANAGED_BY, NAMESPACE, NAMESPACES, namespace_body, state_name

log = logging.getLogger(__name__)

LEASES: Final = APIResource(group="coordination.k8s.io", version="v1", kind="Lease", plural="leases",
                            namespaced=True, verbs=frozenset({"get", "list", "watch", "create", "patch"}))
AUTOMATION_LEASE: Final = "fleetdeck-automation"
TOKEN_ANNOTATION: Final = "fleetdeck.io/token"
"""Which use of the holder's process holds it (an operation id, or ``automation``)."""
BY_ANNOTATION: Final = "fleetdeck.io/by"
WHAT_ANNOTATION: Final = "fleetdeck.io/what"
REQUEST_ANNOTATION: Final = "fleetdeck.io/request"
"""The idempotency key of the request the holder is carrying out (``SyncPlan.request_key``)."""
HOST_ANNOTATION: Final = "fleetdeck.io/host"
PID_ANNOTATION: Final = "fleetdeck.io/pid"
BOOT_ANNOTATION: Final = "fleetdeck.io/boot-id"
PIDNS_ANNOTATION: Final = "fleetdeck.io/pid-namespace"
START_ANNOTATION: Final = "fleetdeck.io/process-start"
"""The holder's process, so that a process on the same host can tell the holder died."""
PROCESS_ANNOTATIONS: Final = (HOST_ANNOTATION, PID_ANNOTATION, BOOT_ANNOTATION, PIDNS_ANNOTATION, START_ANNOTATION)
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
CONFLICT_RETRIES: Final = 8
_MICRO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def operation_lease_name(app: str) -> str:
    """``fleetdeck-op-<app>`` (sanitized like the state ConfigMap's name)."""
    return "fleetdeck-op-" + state_name(app).removeprefix("fleetdeck-app-")


def format_micro_time(ts: float) -> str:
    """RFC 3339 with microseconds, as ``MicroTime`` fields require."""
    whole = math.floor(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1e6):06d}Z"


def parse_micro_time(text: str) -> float | None:
    """The Unix time of an RFC 3339 UTC timestamp (with or without fraction), or None."""
    match = _MICRO.match(text or "")
    if not match:
        return None
    whole: int = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    fraction = match.group(2) or "0"
    return whole + int(fraction) / float(10 ** len(fraction))


# ---------------------------------------------------------------------------------------------- processes


@dataclass(frozen=True, slots=True)
class ProcessMark:
    """Enough about a process to tell, on the same host, whether it is still the one that took a lease."""

    host: str
    pid: int
    boot_id: str = ""
    """``/proc/sys/kernel/random/boot_id``: changes at every boot (pids are reused across boots)."""
    pid_namespace: str = ""
    """``/proc/self/ns/pid`` (``pid:[4026531836]``): containers on one host share the boot id, not this."""
    start: str = ""
    """Start time in clock ticks since boot (``/proc/PID/stat`` field 22): tells a reused pid apart."""

    def annotations(self) -> dict[str, str]:
        """The lease annotations naming this process."""
        return {HOST_ANNOTATION: self.host, PID_ANNOTATION: str(self.pid), BOOT_ANNOTATION: self.boot_id,
                PIDNS_ANNOTATION: self.pid_namespace, START_ANNOTATION: self.start}

    @classmethod
    def from_annotations(cls, notes: Mapping[str, Any]) -> ProcessMark | None:
        """The process named by a lease's annotations, or None when they are missing."""
        pid = str(notes.get(PID_ANNOTATION) or "")
        host = str(notes.get(HOST_ANNOTATION) or "")
        if not (pid.isdigit() and host):
            return None
        return cls(host=host, pid=int(pid), boot_id=str(notes.get(BOOT_ANNOTATION) or ""),
                   pid_namespace=str(notes.get(PIDNS_ANNOTATION) or ""), start=str(notes.get(START_ANNOTATION) or ""))


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time in ticks)`` of a process from ``/proc/PID/stat``, or None."""
    raw = _read(f"/proc/{pid}/stat")
    _, paren, rest = raw.rpartition(")")  # the command name may contain spaces and parentheses
    fields = rest.split()
    if not paren or len(fields) < 20:
        return None
    return fields[0], fields[19]


def mark_of(pid: int) -> ProcessMark:
    """The mark of process ``pid`` of this host, as seen from this process's pid namespace."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    stat = _stat(pid)
    return ProcessMark(host=socket.gethostname(), pid=pid, boot_id=_read(BOOT_ID_PATH), pid_namespace=namespace,
                       start=stat[1] if stat else "")


def this_process() -> ProcessMark:
    """The mark of the current process."""
    return mark_of(os.getpid())


def process_gone(mark: ProcessMark, *, here: ProcessMark | None = None) -> bool:
    """Whether ``mark`` names a process of this host (same hostname, boot and pid namespace) that is gone.

    False whenever that cannot be told for sure: another host, missing boot id, a pid that exists and
    cannot be inspected. A zombie counts as gone (it holds nothing), and so does a pid now used by a
    process that started at another time.
    """
    here = here or this_process()
    if not (mark.boot_id and here.boot_id) or (mark.host, mark.boot_id) != (here.host, here.boot_id):
        return False
    if mark.pid_namespace != here.pid_namespace:
        return False
    if mark.pid <= 0:
        return False
    try:
        os.kill(mark.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _stat(mark.pid)
    if stat is None:
        return False
    state, start = stat
    return state in ("Z", "X") or bool(mark.start and start != mark.start)


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A Lease as read."""

    name: str
    holder: str
    token: str
    by: str
    what: str
    acquired_at: float | None
    renewed_at: float | None
    duration: float
    transitions: int
    resource_version: str
    process: ProcessMark | None = None
    """The holder's process, from the annotations (None for leases written without them)."""
    request: str = ""
    """The holder's request key (empty for leases that are not an operation's)."""

    def expired(self, now: float) -> bool:
        """Whether nobody holds it any more (released, or not renewed within its duration)."""
        if not self.holder or self.renewed_at is None:
            return True
        return self.renewed_at + self.duration < now

    def held_by(self, holder: str, token: str) -> bool:
        """Whether this holder and token hold it."""
        return self.holder == holder and self.token == token


def _record(obj: Mapping[str, Any]) -> LeaseRecord:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    notes = meta.get("annotations") or {}
    return LeaseRecord(
        name=str(meta.get("name", "")), holder=str(spec.get("holderIdentity") or ""),
        token=str(notes.get(TOKEN_ANNOTATION, "")), by=str(notes.get(BY_ANNOTATION, "")),
        what=str(notes.get(WHAT_ANNOTATION, "")), acquired_at=parse_micro_time(str(spec.get("acquireTime", ""))),
        renewed_at=parse_micro_time(str(spec.get("renewTime", ""))),
        duration=float(spec.get("leaseDurationSeconds") or 0), transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(meta.get("resourceVersion", "")),
        process=ProcessMark.from_annotations(notes), request=str(notes.get(REQUEST_ANNOTATION, "")),
    )


def _since(record: LeaseRecord) -> str:
    ts = record.acquired_at or record.renewed_at
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else "an unknown time"


@dataclass(frozen=True, slots=True)
class Claim:
    """Who wants a lease, for how long, and what for."""

    name: str
    holder: str
    token: str
    by: str
    what: str
    duration: float
    process: ProcessMark = field(default_factory=this_process)
    """The claiming process (recorded in the lease so a dead holder on this host can be told)."""
    request: str = ""
    """The idempotency key of the request the claim is for (an operation's ``SyncPlan.request_key``)."""


def _body(claim: Claim, *, previous: LeaseRecord | None, now: float) -> dict[str, Any]:
    same = previous is not None and previous.held_by(claim.holder, claim.token)
    acquired = previous.acquired_at if same and previous and previous.acquired_at else now
    transitions = (previous.transitions if previous else 0) + (0 if same or previous is None else 1)
    metadata: dict[str, Any] = {
        "name": claim.name, "namespace": NAMESPACE, "labels": dict(MANAGED_BY),
        "annotations": {TOKEN_ANNOTATION: claim.token, BY_ANNOTATION: claim.by, WHAT_ANNOTATION: claim.what,
                        REQUEST_ANNOTATION: claim.request, **claim.process.annotations()},
    }
    if previous is not None:
        metadata["resourceVersion"] = previous.resource_version
    spec = {"holderIdentity": claim.holder, "leaseDurationSeconds": max(1, math.ceil(claim.duration)),
            "acquireTime": format_micro_time(acquired), "renewTime": format_micro_time(now),
            "leaseTransitions": transitions}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


OnTakeover = Callable[[LeaseRecord], Awaitable[None]]
"""Told about a lease taken over from a dead process on this host (the record as it was)."""


class LeaseClient:
    """Conditional reads and writes of Leases in ``fleetdeck-system``.

    Args:
        api: the destination cluster.
        settings: sync settings (field manager, request retries).
        clock: wall clock for lease times (default: the API server's, ``api.server_time``; injected in tests).
        on_takeover: awaited after a lease of a dead process on this host was taken over.
        gone: whether a holder's process is gone (``process_gone``; injected in tests).
    """

    def __init__(self, api: KubeAPI, *, settings: SyncSettings | None = None,
                 clock: Callable[[], float] | None = None, on_takeover: OnTakeover | None = None,
                 gone: Callable[[ProcessMark], bool] = process_gone) -> None:
        self.api = api
        self.settings = settings or SyncSettings()
        self.clock = clock or api.server_time
        self.on_takeover = on_takeover
        self._gone = gone

    async def _retry(self, request: Callable[[], Any]) -> Any:
        return await with_retries(request, attempts=self.settings.request_retries)

    async def read(self, name: str) -> LeaseRecord | None:
        """The Lease ``name``, or None."""
        obj: JSON | None = await self._retry(lambda: self.api.get(LEASES, name, NAMESPACE))
        return None if obj is None else _record(obj)

    async def _write(self, claim: Claim, previous: LeaseRecord | None) -> LeaseRecord:
        body = _body(claim, previous=previous, now=self.clock())
        manager = self.settings.field_manager
        if previous is None:
            await self._retry(lambda: self.api.apply(NAMESPACES, namespace_body(), field_manager=manager))
            return _record(await self._retry(lambda: self.api.create(LEASES, body)))
        return _record(await self._retry(lambda: self.api.apply(LEASES, body, field_manager=manager)))

    def _locked(self, claim: Claim, record: LeaseRecord) -> LockedError:
        since = _since(record)
        what = f" ({record.what})" if record.what else ""
        who = record.by or record.holder
        if claim.request and record.request == claim.request:
            return DuplicateRequestError(
                f"duplicate request: the same request is already running on cluster {self.api.cluster} "
                f"({record.what or claim.name}, submitted by {who} [{record.holder}] at {since}); it was not "
                "carried out again", holder=record.holder, since=since)
        return LockedError(f"{claim.name} on cluster {self.api.cluster} is held by {who} [{record.holder}]{what} "
                           f"since {since}", holder=record.holder, since=since)

    async def acquire(self, claim: Claim) -> LeaseRecord:
        """Take or renew the lease for ``claim``.

        Raises:
            LockedError: someone else holds it and it has not expired.
            ClusterError: the cluster refused or kept conflicting.
        """
        for attempt in range(CONFLICT_RETRIES):
            if attempt:
                await conflict_pause(attempt)
            current = await self.read(claim.name)
            dead = False
            if current is not None and not current.expired(self.clock()) \
                    and not current.held_by(claim.holder, claim.token):
                dead = current.process is not None and self._gone(current.process)
                if not dead:
                    raise self._locked(claim, current)
            try:
                record = await self._write(claim, current)
            except ClusterError as exc:
                if not exc.conflict:
                    raise
                continue
            if dead and current is not None and current.process is not None:
                log.warning("lease %s on %s: released lock of dead process %d (%s)", claim.name,
                            self.api.cluster, current.process.pid, current.holder)
                if self.on_takeover is not None:
                    await self.on_takeover(current)
            return record
        raise ClusterError(f"lease {claim.name} kept changing under concurrent writers",
                           cluster=self.api.cluster, status=409, reason="Conflict")

    async def release(self, claim: Claim, *, known: LeaseRecord | None = None) -> None:
        """Give the lease up if ``claim`` still holds it (a lost lease is left alone).

        ``known``: the record as ``claim`` last wrote it: released without reading it again (the write is
        conditional on its resourceVersion; if the lease changed since, it is read and checked).
        """
        current = known if known is not None and known.held_by(claim.holder, claim.token) \
            else await self.read(claim.name)
        if current is None or not current.held_by(claim.holder, claim.token):
            return
        body = _body(claim, previous=current, now=self.clock())
        body["spec"]["holderIdentity"] = ""
        body["spec"]["leaseDurationSeconds"] = 1
        body["metadata"]["annotations"] = dict.fromkeys((TOKEN_ANNOTATION, BY_ANNOTATION, WHAT_ANNOTATION,
                                                         REQUEST_ANNOTATION, *PROCESS_ANNOTATIONS), "")
        try:
            await self._retry(lambda: self.api.apply(LEASES, body, field_manager=self.settings.field_manager))
        except ClusterError as exc:
            if not exc.conflict:
                raise
            if current is known:  # it changed since we wrote it: decide on what it is now
                await self.release(claim)


class OperationLease:
    """The per-app lease a manual sync or rollback holds while it runs, renewed in the background.

    Args:
        api: the destination cluster.
        app: the app.
        identity: the operator.
        token: the operation id (two operations in one process exclude each other too).
        what: shown to a refused operator, e.g. ``sync of 1a2b3c4d``.
        duration: lease duration in seconds; a crashed holder on another host blocks others at most
            this long (on this host, its lease is taken over at once).
        renew_every: renewal period while held.
        settings: sync settings.
        clock: wall clock (injected in tests).
        on_takeover: awaited after the lease was taken over from a dead process on this host.
    """

    def __init__(self, api: KubeAPI, *, app: str, identity: OperatorIdentity, token: str, what: str = "",
                 request: str = "",
                 duration: float = 60.0, renew_every: float = 15.0, settings: SyncSettings | None = None,
                 clock: Callable[[], float] | None = None, on_takeover: OnTakeover | None = None) -> None:
        self.client = LeaseClient(api, settings=settings, clock=clock, on_takeover=on_takeover)
        self.claim = Claim(name=operation_lease_name(app), holder=identity.holder, token=token,
                           by=identity.by, what=what, duration=duration, request=request)
        self.renew_every = renew_every
        self.lost = False
        """Set when a renewal found someone else holding the lease."""
        self._task: asyncio.Task[Any] | None = None
        self._record: LeaseRecord | None = None
        """The lease as this operation last wrote it (released from it without a read)."""

    async def acquire(self) -> None:
        """Take the lease and start renewing it.

        Raises:
            LockedError: another operation holds it.
        """
        self._record = await self.client.acquire(self.claim)
        self._task = create_guarded_task(self._renew(), name=f"lease:{self.client.api.cluster}:{self.claim.name}")
        # Let the task start: a task cancelled before its first step leaves its coroutine never awaited.
        await asyncio.sleep(0)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                self._record = await self.client.acquire(self.claim)
            except LockedError:
                self._record = None
                self.lost = True
                log.error("lost lease %s to another holder", self.claim.name)
                return
            except ClusterError as exc:
                log.warning("failed to renew lease %s: %s", self.claim.name, exc)

    def abandon(self) -> None:
        """Stop renewing without a request (cancellation): the lease expires by itself."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def release(self) -> None:
        """Stop renewing and give the lease up."""
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None
        await self.client.release(self.claim, known=self._record)

    async def __aenter__(self) -> OperationLease:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


class AutomationLease:
    """The per-cluster automation lease: ``tick()`` takes or renews it and says whether it is held.

    The engine runs ``run()`` as a guarded task per cluster and consults ``held`` before every
    automated sync. ``held`` turns False by itself when renewals have failed for ``renew_deadline``
    seconds, so a partitioned fleetdeck stops automating before another may take over.

    Args:
        api: the destination cluster.
        identity: this process.
        duration: lease duration (30 s).
        renew_every: renewal period (10 s).
        settings: sync settings.
        clock: wall clock for lease timestamps (injected in tests).
        monotonic: clock for the local renew deadline (injected in tests).
        on_takeover: awaited after the lease was taken over from a dead process on this host.
    """

    def __init__(self, api: KubeAPI, *, identity: OperatorIdentity, duration: float = 30.0,
                 renew_every: float = 10.0, settings: SyncSettings | None = None,
                 clock: Callable[[], float] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, on_takeover: OnTakeover | None = None) -> None:
        self.client = LeaseClient(api, settings=settings, clock=clock, on_takeover=on_takeover)
        self.claim = Claim(name=AUTOMATION_LEASE, holder=identity.holder, token="automation", by=identity.by,
                           what="automated sync owner", duration=duration)
        self.renew_every = renew_every
        self.renew_deadline = duration - renew_every
        self.holder = ""
        """The last holder seen (this process's identity when held)."""
        self._monotonic = monotonic
        self._held_until = -math.inf

    @property
    def held(self) -> bool:
        """Whether this process may run automated syncs now."""
        return self._monotonic() < self._held_until

    async def tick(self) -> bool:
        """Try once to take or renew the lease; return ``held``."""
        try:
            record = await self.client.acquire(self.claim)
        except LockedError as exc:
            self.holder = exc.holder
            self._held_until = -math.inf
        except ClusterError as exc:
            log.warning("automation lease on %s: %s", self.client.api.cluster, exc)
        else:
            self.holder = record.holder
            self._held_until = self._monotonic() + self.renew_deadline
        return self.held

    async def run(self, on_change: Callable[[bool], None] | None = None) -> None:
        """Tick every ``renew_every`` seconds forever, calling ``on_change`` when ``held`` flips."""
        was = False
        while True:
            now_held = await self.tick()
            if on_change is not None and now_held != was:
                on_change(now_held)
            was = now_held
            await asyncio.sleep(self.renew_every)

    async def release(self) -> None:
        """Give the lease up (on shutdown) so another fleetdeck takes over at once."""
        self._held_until = -math.inf
        await self.client.release(self.claim)
