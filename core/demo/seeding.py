"""Put the demo fleet's clusters into a state as if fleetdeck had been running them for a while.

Role: render an overlay at a revision with the real kustomize (``kubectl kustomize`` from the wheel,
parsed by the core's YAML loader), apply it to a simulated cluster as fleetdeck would (tracking label
and annotation, field manager ``fleetdeck``), and write the app's shared state in the cluster
(``core.sync.state``: inventory, history, and the pause when there is one).

Constraint: blocking (subprocess); runs before the engine starts. Writes only to the simulated
clusters it is given.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.desired.kustomize import kustomize_command
from core.desired.yamlload import load_documents
from core.errors import RenderError
from core.model import AppControl, HistoryEntry, OperationPhase, ResourceKey, SyncTrigger
from core.reconcile.tracking import add_tracking
from core.simulated.simulated_cluster import SimulatedCluster
from core.sync.state import NAMESPACE as STATE_NAMESPACE
from core.sync.state import (
    AppState,
    InventoryItem,
    OperationRecord,
    decode,
    encode,
    namespace_body,
    state_name,
)

FIELD_MANAGER = "fleetdeck"
HISTORY_LIMIT = 10
_RENDER_TIMEOUT = 60.0

Prepare = Callable[[str, Mapping[str, Any]], dict[str, Any]]
"""Turns a rendered object of an app into what fleetdeck applies (``prepare_for_apply`` by default)."""


def render_overlay(tree: Path, path: str) -> list[dict[str, Any]]:
    """The objects ``path`` of ``tree`` renders to.

    Raises:
        RenderError: kustomize failed (the message is its stderr).
    """
    command = [*kustomize_command(), str(tree / path), "--load-restrictor", "LoadRestrictionsRootOnly"]
    result = subprocess.run(command, cwd=tree, capture_output=True, check=False, timeout=_RENDER_TIMEOUT)
    if result.returncode != 0:
        raise RenderError(f"kustomize build {path}: {result.stderr.decode(errors='replace').strip()}")
    return [dict(doc.obj) for doc in load_documents(result.stdout, f"kustomize build {path}")]


def prepare_for_apply(app: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """A rendered object as fleetdeck applies it: with its owner label and tracking annotation."""
    return add_tracking(obj, app=app, key=ResourceKey.of(obj))


def seed_app(
    cluster: SimulatedCluster,
    *,
    app: str,
    namespace: str,
    objects: Iterable[Mapping[str, Any]],
    history: Sequence[tuple[str, float]],
    by: str,
    revision: tuple[str, float] | None = None,
    automated: bool = False,
    prepare: Prepare = prepare_for_apply,
) -> list[ResourceKey]:
    """Apply an app's rendered objects and record them as fleetdeck's inventory and history.

    Args:
        cluster: the destination.
        app: the app's name.
        namespace: its destination namespace (created first).
        objects: the rendered objects at the seeded revision.
        history: ``(sha, committed_at)`` of the revisions "synced" so far, oldest first; the last one
            is the revision the objects come from.
        by: who the history says synced it.
        revision: ``(sha, committed_at)`` of the branch head the last sync ran at (default: the last
            history entry's); automation does not sync a revision again unless it self-heals.
        automated: the syncs were automated (recorded in the last operation, which also tells
            automation that this revision was already synced).
        prepare: how a rendered object becomes the applied one.

    Returns:
        The keys applied.
    """
    cluster.ensure_namespace(namespace, field_manager=FIELD_MANAGER)
    applied = [cluster.seed_apply(prepare(app, obj), field_manager=FIELD_MANAGER) for obj in objects]
    keys = [ResourceKey.of(obj) for obj in applied]
    inventory = tuple(InventoryItem(key, str(obj["apiVersion"])) for key, obj in zip(keys, applied, strict=True))
    entries = tuple(
        HistoryEntry(id=index + 1, revision=sha, kind="sync", by=by, at=at + 600.0, result="Succeeded",
                     summary=f"{len(keys)} created" if index == 0 else "configured",
                     trigger=SyncTrigger.AUTOMATED if automated else SyncTrigger.MANUAL)
        for index, (sha, at) in enumerate(history)
    )
    synced = revision or (history[-1] if history else None)
    operation = None if synced is None else OperationRecord(
        id=f"seed-{len(entries)}", kind="sync", revision=synced[0], phase=OperationPhase.SUCCEEDED,
        started_at=synced[1] + 590.0, finished_at=synced[1] + 600.0, by=by, stage="record", automated=automated)
    write_state(cluster, AppState(app=app, inventory=inventory, history=entries, last_operation=operation))
    return keys


def seed_paused(cluster: SimulatedCluster, app: str, reason: str, by: str, *, at: float | None = None) -> None:
    """Pause ``app`` on ``cluster`` as an operator would, in fleetdeck's shared state.

    Args:
        cluster: the destination cluster that holds the app's state.
        app: the app.
        reason: why (shown in the console's banner).
        by: who paused it (``user@host``).
        at: when (Unix time; default: the cluster's clock now).
    """
    state = read_state(cluster, app)
    control = AppControl(paused=True, reason=reason, by=by, at=cluster.store.clock() if at is None else at,
                         pinned=state.control.pinned)
    write_state(cluster, replace(state, control=control))


def read_state(cluster: SimulatedCluster, app: str) -> AppState:
    """The app's shared state as stored in ``cluster`` (defaults when there is none)."""
    stored = cluster.get_object(ResourceKey("", "ConfigMap", STATE_NAMESPACE, state_name(app)))
    return decode(app, stored, now=cluster.store.clock())


def write_state(cluster: SimulatedCluster, state: AppState) -> None:
    """Store ``state`` (creating ``fleetdeck-system`` first), as fleetdeck's own writes would."""
    cluster.seed_apply(namespace_body(), field_manager=FIELD_MANAGER)
    cluster.seed_apply(encode(replace(state, resource_version=""), history_limit=HISTORY_LIMIT),
                       field_manager=FIELD_MANAGER)


def drift(cluster: SimulatedCluster, key: ResourceKey, patch: Mapping[str, Any], *,
          manager: str = "kubectl-edit") -> None:
    """Change a live object behind fleetdeck's back, as ``kubectl edit`` would."""
    cluster.update_as(manager, key, patch)
