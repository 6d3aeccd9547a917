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

Expiry is judged from the lease's ``renewTime`` and the local clock, so bastions must keep NTP time;
a skew of a few seconds only shortens or lengthens a takeover by that much.

Constraint: only Lease objects in ``fleetdeck-system`` are written here.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from core.aio import create_guarded_task, stop_tasks
from core.errors import ClusterError, LockedError
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


def _body(claim: Claim, *, previous: LeaseRecord | None, now: float) -> dict[str, Any]:
    same = previous is not None and previous.held_by(claim.holder, claim.token)
    acquired = previous.acquired_at if same and previous and previous.acquired_at else now
    transitions = (previous.transitions if previous else 0) + (0 if same or previous is None else 1)
    metadata: dict[str, Any] = {
        "name": claim.name, "namespace": NAMESPACE, "labels": dict(MANAGED_BY),
        "annotations": {TOKEN_ANNOTATION: claim.token, BY_ANNOTATION: claim.by, WHAT_ANNOTATION: claim.what},
    }
    if previous is not None:
        metadata["resourceVersion"] = previous.resource_version
    spec = {"holderIdentity": claim.holder, "leaseDurationSeconds": max(1, math.ceil(claim.duration)),
            "acquireTime": format_micro_time(acquired), "renewTime": format_micro_time(now),
            "leaseTransitions": transitions}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


class LeaseClient:
    """Conditional reads and writes of Leases in ``fleetdeck-system``.

    Args:
        api: the destination cluster.
        settings: sync settings (field manager, request retries).
        clock: wall clock (injected in tests).
    """

    def __init__(self, api: KubeAPI, *, settings: SyncSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.settings = settings or SyncSettings()
        self.clock = clock

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
            if current is not None and not current.expired(self.clock()) \
                    and not current.held_by(claim.holder, claim.token):
                raise self._locked(claim, current)
            try:
                return await self._write(claim, current)
            except ClusterError as exc:
                if not exc.conflict:
                    raise
        raise ClusterError(f"lease {claim.name} kept changing under concurrent writers",
                           cluster=self.api.cluster, status=409, reason="Conflict")

    async def release(self, claim: Claim) -> None:
        """Give the lease up if ``claim`` still holds it (a lost lease is left alone)."""
        current = await self.read(claim.name)
        if current is None or not current.held_by(claim.holder, claim.token):
            return
        body = _body(claim, previous=current, now=self.clock())
        body["spec"]["holderIdentity"] = ""
        body["spec"]["leaseDurationSeconds"] = 1
        body["metadata"]["annotations"] = {TOKEN_ANNOTATION: "", BY_ANNOTATION: "", WHAT_ANNOTATION: ""}
        try:
            await self._retry(lambda: self.api.apply(LEASES, body, field_manager=self.settings.field_manager))
        except ClusterError as exc:
            if not exc.conflict:
                raise


class OperationLease:
    """The per-app lease a manual sync or rollback holds while it runs, renewed in the background.

    Args:
        api: the destination cluster.
        app: the app.
        identity: the operator.
        token: the operation id (two operations in one process exclude each other too).
        what: shown to a refused operator, e.g. ``sync of 1a2b3c4d``.
        duration: lease duration in seconds; a crashed holder blocks others at most this long.
        renew_every: renewal period while held.
        settings: sync settings.
        clock: wall clock (injected in tests).
    """

    def __init__(self, api: KubeAPI, *, app: str, identity: OperatorIdentity, token: str, what: str = "",
                 duration: float = 60.0, renew_every: float = 15.0, settings: SyncSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = LeaseClient(api, settings=settings, clock=clock)
        self.claim = Claim(name=operation_lease_name(app), holder=identity.holder, token=token,
                           by=identity.by, what=what, duration=duration)
        self.renew_every = renew_every
        self.lost = False
        """Set when a renewal found someone else holding the lease."""
        self._task: asyncio.Task[Any] | None = None

    async def acquire(self) -> None:
        """Take the lease and start renewing it.

        Raises:
            LockedError: another operation holds it.
        """
        await self.client.acquire(self.claim)
        self._task = create_guarded_task(self._renew(), name=f"lease:{self.client.api.cluster}:{self.claim.name}")
        # Let the task start: a task cancelled before its first step leaves its coroutine never awaited.
        await asyncio.sleep(0)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.client.acquire(self.claim)
            except LockedError:
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
        await self.client.release(self.claim)

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
    """

    def __init__(self, api: KubeAPI, *, identity: OperatorIdentity, duration: float = 30.0,
                 renew_every: float = 10.0, settings: SyncSettings | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = LeaseClient(api, settings=settings, clock=clock)
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
