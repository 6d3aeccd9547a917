"""Shared per-app state kept in the destination cluster: control, inventory, history, operations.

Every operator's fleetdeck (and a later in-cluster agent) reads and writes the same ConfigMap,
``fleetdeck-system/fleetdeck-app-<app>``, so pause, pin, inventory and history are one truth that
survives restarts. Data keys (each a JSON document):

* ``control``: ``{paused, reason, by, at, expires_at, pinned}`` (an expired pause reads as not paused);
* ``inventory``: ``[{key, apiVersion}]``, the objects the app's syncs applied (the prune allow-list);
* ``history``: the last ``SyncSettings.history_limit`` recorded syncs and rollbacks;
* ``operation``: the in-flight operation (``null`` when none) so a crash is detectable on restart;
* ``last-operation``: the most recent finished operation, failed ones included, so automation on any
  bastion never retries a failed revision.

Writes are read-modify-write cycles: server-side apply (field manager ``fleetdeck``) carrying the
``metadata.resourceVersion`` that was read, which the API server treats as a precondition (409 on
mismatch); the first write is a ``create`` (409 when someone else created it first). A conflict re-reads
and retries a bounded number of times. Constraint: no manifest and no Secret value is ever stored here,
only resource keys, revisions and operator-provided text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from core.errors import ClusterError
from core.live.api import JSON, APIResource, KubeAPI
from core.model import AppControl, HistoryEntry, OperationPhase, ResourceKey, SyncTrigger
from core.reconcile.tracking import app_label_value
from core.settings import SyncSettings
from core.sync.retry import conflict_pause, with_retries

log = logging.getLogger(__name__)

NAMESPACE: Final = "fleetdeck-system"
NAME_PREFIX: Final = "fleetdeck-app-"
MAX_NAME: Final = 253
APP_ANNOTATION: Final = "fleetdeck.io/app"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "fleetdeck"}
CONFLICT_RETRIES: Final = 8
_VERBS = frozenset({"get", "list", "watch", "create", "patch", "delete"})
CONFIGMAPS: Final = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps",
                                namespaced=True, verbs=_VERBS)
NAMESPACES: Final = APIResource(group="", version="v1", kind="Namespace", plural="namespaces",
                                namespaced=False, verbs=_VERBS)
_INVALID = re.compile(r"[^a-z0-9.-]+")


def state_name(app: str) -> str:
    """The ConfigMap name for ``app``: a DNS subdomain of at most 253 characters.

    Names that had to be changed (case, invalid characters, length) get a hash suffix, so two apps
    never share a ConfigMap.
    """
    cleaned = _INVALID.sub("-", app.lower()).strip("-.")
    name = NAME_PREFIX + cleaned
    if cleaned == app and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(app.encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME - len(digest) - 1].rstrip('-.')}-{digest}"


def namespace_body() -> dict[str, Any]:
    """The ``fleetdeck-system`` Namespace, applied before the first write of any shared state."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": dict(MANAGED_BY)}}


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class InventoryItem:
    """An object an app's sync applied, with the API version it was applied at."""

    key: ResourceKey
    api_version: str


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """An operation as persisted: in flight (``operation``) or the last finished one."""

    id: str
    kind: str
    """``sync`` or ``rollback``."""
    revision: str
    phase: OperationPhase
    started_at: float
    by: str
    holder: str = ""
    """Lease holder identity of the process running it (``user@host:pid``)."""
    wave: int | None = None
    """The wave being applied, for "interrupted at wave X"."""
    stage: str = ""
    """``preflight``, ``apply``, ``prune``, ``record``."""
    finished_at: float | None = None
    message: str = ""
    automated: bool = False
    selective: bool = False
    self_heal_attempts: int = 0
    self_heal: bool = False
    """An automated sync undoing drift from the revision already synced (only its drifted resources)."""

    @property
    def trigger(self) -> SyncTrigger:
        """What started it, as its history entry records."""
        if not self.automated:
            return SyncTrigger.MANUAL
        return SyncTrigger.SELF_HEAL if self.self_heal else SyncTrigger.AUTOMATED

    @property
    def where(self) -> str:
        """Where it got to: ``wave 2`` or the stage name."""
        if self.stage == "apply" and self.wave is not None:
            return f"wave {self.wave}"
        return self.stage or "start"


@dataclass(frozen=True, slots=True)
class AppState:
    """Everything persisted about one app on one cluster."""

    app: str
    control: AppControl = field(default_factory=AppControl)
    inventory: tuple[InventoryItem, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    operation: OperationRecord | None = None
    last_operation: OperationRecord | None = None
    resource_version: str = ""
    """The ConfigMap's resourceVersion when read; ``""`` when it does not exist yet."""

    @property
    def inventory_keys(self) -> frozenset[ResourceKey]:
        """The keys of the inventory."""
        return frozenset(item.key for item in self.inventory)

    @property
    def interrupted(self) -> str:
        """``""``, or what an operation left in flight says (meaningful when its lease is free)."""
        op = self.operation
        if op is None:
            return ""
        return (f"{op.kind} {op.id} of {op.revision[:12]} by {op.by} was interrupted at {op.where} "
                f"(started {_iso(op.started_at)})")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# ---------------------------------------------------------------------------------------------- decoding


def _loads(data: Mapping[str, Any], name: str, default: Any) -> Any:
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    return json.loads(raw)


def _control(raw: Any, now: float) -> AppControl:
    control = AppControl(
        paused=bool(raw.get("paused", False)), reason=str(raw.get("reason", "")), by=str(raw.get("by", "")),
        at=raw.get("at"), expires_at=raw.get("expires_at"), pinned=raw.get("pinned") or None,
    )
    if control.paused and control.expires_at is not None and control.expires_at < now:
        return AppControl(pinned=control.pinned)
    return control


def _inventory(raw: Any) -> tuple[InventoryItem, ...]:
    return tuple(InventoryItem(ResourceKey.parse(str(item["key"])), str(item.get("apiVersion", "")))
                 for item in raw)


def _trigger(raw: Any) -> SyncTrigger:
    """A stored trigger; absent (written before triggers were recorded) or unknown reads as UNKNOWN."""
    try:
        return SyncTrigger(str(raw)) if raw else SyncTrigger.UNKNOWN
    except ValueError:
        return SyncTrigger.UNKNOWN


def _history(raw: Any) -> tuple[HistoryEntry, ...]:
    return tuple(
        HistoryEntry(id=int(e["id"]), revision=str(e["revision"]), kind=str(e.get("kind", "sync")),
                     by=str(e.get("by", "")), at=float(e.get("at", 0)), result=str(e.get("result", "")),
                     summary=str(e.get("summary", "")), trigger=_trigger(e.get("trigger")))
        for e in raw
    )


def _operation(raw: Any) -> OperationRecord | None:
    if not raw:
        return None
    return OperationRecord(
        id=str(raw["id"]), kind=str(raw.get("kind", "sync")), revision=str(raw.get("revision", "")),
        phase=OperationPhase(raw.get("phase", "Running")), started_at=float(raw.get("started_at", 0)),
        by=str(raw.get("by", "")), holder=str(raw.get("holder", "")), wave=raw.get("wave"),
        stage=str(raw.get("stage", "")), finished_at=raw.get("finished_at"), message=str(raw.get("message", "")),
        automated=bool(raw.get("automated", False)), selective=bool(raw.get("selective", False)),
        self_heal_attempts=int(raw.get("self_heal_attempts", 0)), self_heal=bool(raw.get("self_heal", False)),
    )


_UNREADABLE_CONTROL = "fleetdeck's control state for this app is unreadable; paused until fixed"


def decode(app: str, configmap: Mapping[str, Any] | None, *, now: float) -> AppState:
    """The state held by ``configmap`` (None: nothing stored yet).

    A damaged key never loosens safety: unreadable control reads as paused, an unreadable inventory
    as empty (nothing is prunable), an unreadable operation as interrupted.
    """
    if configmap is None:
        return AppState(app=app)
    data = configmap.get("data") or {}
    rv = str((configmap.get("metadata") or {}).get("resourceVersion", ""))
    state = AppState(app=app, resource_version=rv)
    decoders: tuple[tuple[str, Callable[[], AppState]], ...] = (
        ("control", lambda: replace(state, control=_control(_loads(data, "control", {}), now))),
        ("inventory", lambda: replace(state, inventory=_inventory(_loads(data, "inventory", [])))),
        ("history", lambda: replace(state, history=_history(_loads(data, "history", [])))),
        ("operation", lambda: replace(state, operation=_operation(_loads(data, "operation", None)))),
        ("last-operation", lambda: replace(state, last_operation=_operation(_loads(data, "last-operation", None)))),
    )
    for name, decoder in decoders:
        try:
            state = decoder()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("state of app %s: key %s is unreadable (%s)", app, name, exc)
            state = _damaged(state, name)
    return state


def _damaged(state: AppState, name: str) -> AppState:
    if name == "control":
        return replace(state, control=AppControl(paused=True, reason=_UNREADABLE_CONTROL, by="fleetdeck"))
    if name == "operation":
        broken = OperationRecord(id="unknown", kind="sync", revision="", phase=OperationPhase.ERROR,
                                 started_at=0.0, by="unknown", message="unreadable operation record")
        return replace(state, operation=broken)
    return state


# ---------------------------------------------------------------------------------------------- encoding


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _control_json(control: AppControl) -> dict[str, Any]:
    return {"paused": control.paused, "reason": control.reason, "by": control.by, "at": control.at,
            "expires_at": control.expires_at, "pinned": control.pinned}


def _operation_json(op: OperationRecord | None) -> dict[str, Any] | None:
    if op is None:
        return None
    return {"id": op.id, "kind": op.kind, "revision": op.revision, "phase": op.phase.value,
            "started_at": op.started_at, "by": op.by, "holder": op.holder, "wave": op.wave, "stage": op.stage,
            "finished_at": op.finished_at, "message": op.message, "automated": op.automated,
            "selective": op.selective, "self_heal_attempts": op.self_heal_attempts, "self_heal": op.self_heal}


def _history_json(entry: HistoryEntry) -> dict[str, Any]:
    return {"id": entry.id, "revision": entry.revision, "kind": entry.kind, "by": entry.by, "at": entry.at,
            "result": entry.result, "summary": entry.summary, "trigger": entry.trigger.value}


def encode(state: AppState, *, history_limit: int) -> dict[str, Any]:
    """The ConfigMap for ``state`` (with its resourceVersion as the write precondition, when known)."""
    metadata: dict[str, Any] = {
        "name": state_name(state.app), "namespace": NAMESPACE,
        "labels": {**MANAGED_BY, "fleetdeck.io/state-of": app_label_value(state.app)},
        "annotations": {APP_ANNOTATION: state.app},
    }
    if state.resource_version:
        metadata["resourceVersion"] = state.resource_version
    items = sorted(state.inventory, key=lambda i: i.key)
    data = {
        "control": _dumps(_control_json(state.control)),
        "inventory": _dumps([{"key": str(i.key), "apiVersion": i.api_version} for i in items]),
        "history": _dumps([_history_json(e) for e in state.history[-history_limit:]]),
        "operation": _dumps(_operation_json(state.operation)),
        "last-operation": _dumps(_operation_json(state.last_operation)),
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


# ---------------------------------------------------------------------------------------------- transforms


def paused(state: AppState, *, reason: str, by: str, at: float, expires_at: float | None = None) -> AppState:
    """``state`` with automation paused (a pin is kept)."""
    control = AppControl(paused=True, reason=reason, by=by, at=at, expires_at=expires_at,
                         pinned=state.control.pinned)
    return replace(state, control=control)


def resumed(state: AppState) -> AppState:
    """``state`` with the pause and any rollback pin cleared."""
    return replace(state, control=AppControl())


def pinned_and_paused(state: AppState, *, revision: str, reason: str, by: str, at: float) -> AppState:
    """``state`` pinned to ``revision`` and paused, in one value (one write: rollback's atomic step)."""
    return replace(state, control=AppControl(paused=True, reason=reason, by=by, at=at, pinned=revision))


# ---------------------------------------------------------------------------------------------- store


class AppStateStore:
    """Reads and writes apps' shared state in one cluster.

    Args:
        api: the destination cluster.
        settings: sync settings (field manager, history limit, request retries).
        clock: wall clock (injected in tests).
    """

    def __init__(self, api: KubeAPI, *, settings: SyncSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.settings = settings or SyncSettings()
        self.clock = clock

    async def _get(self, app: str) -> JSON | None:
        return await with_retries(lambda: self.api.get(CONFIGMAPS, state_name(app), NAMESPACE),
                                  attempts=self.settings.request_retries)

    async def load(self, app: str) -> AppState:
        """The app's state (defaults when nothing is stored yet)."""
        return decode(app, await self._get(app), now=self.clock())

    async def update(self, app: str, fn: Callable[[AppState], AppState], *, known: AppState | None = None) -> AppState:
        """Read, apply ``fn``, write with a resourceVersion precondition; retry on conflict.

        ``fn`` may be called several times (once per attempt) and must be pure. When it returns the
        state unchanged nothing is written.

        ``known``: the state as this caller last read or wrote it (with its resourceVersion): the first
        attempt writes on it without reading again. The precondition makes that safe: if anyone wrote since,
        the write conflicts and the next attempt reads. When ``fn`` changes nothing on ``known``, the stored
        state is read and returned (so the caller sees what others wrote).

        Returns:
            The state as written.

        Raises:
            ClusterError: the write failed, or kept conflicting with other writers.
        """
        for attempt in range(CONFLICT_RETRIES):
            if attempt:
                await conflict_pause(attempt)
            reused = known if attempt == 0 and known is not None and known.resource_version else None
            current = reused if reused is not None else await self.load(app)
            wanted = fn(current)
            if wanted == current and reused is not None:
                current = await self.load(app)
                wanted = fn(current)
            if wanted == current:
                return current
            try:
                written = await self._write(replace(wanted, resource_version=current.resource_version))
            except ClusterError as exc:
                if exc.conflict:
                    continue
                raise
            return decode(app, written, now=self.clock())
        raise ClusterError(f"state of app {app} kept changing under concurrent writers; try again",
                           cluster=self.api.cluster, status=409, reason="Conflict")

    async def _write(self, state: AppState) -> JSON:
        body = encode(state, history_limit=self.settings.history_limit)
        attempts = self.settings.request_retries
        if not state.resource_version:
            await with_retries(lambda: self.api.apply(
                NAMESPACES, namespace_body(), field_manager=self.settings.field_manager), attempts=attempts)
            return await with_retries(lambda: self.api.create(CONFIGMAPS, body), attempts=attempts)
        return await with_retries(
            lambda: self.api.apply(CONFIGMAPS, body, field_manager=self.settings.field_manager),
            attempts=attempts)

    async def pause(self, app: str, *, reason: str, by: str, expires_at: float | None = None) -> AppState:
        """Pause the app's automation."""
        now = self.clock()
        return await self.update(app, lambda s: paused(s, reason=reason, by=by, at=now, expires_at=expires_at))

    async def resume(self, app: str) -> AppState:
        """Clear the pause and the rollback pin."""
        return await self.update(app, resumed)

    async def pin_and_pause(self, app: str, *, revision: str, reason: str, by: str) -> AppState:
        """Pin the app to ``revision`` and pause it, atomically (one conditional write)."""
        now = self.clock()
        return await self.update(
            app, lambda s: pinned_and_paused(s, revision=revision, reason=reason, by=by, at=now))
