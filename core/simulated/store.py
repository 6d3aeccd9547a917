"""The simulated cluster's object store: etcd plus the apiserver's write path, in one process.

Role: objects as dicts keyed by ``ResourceKey``, one global monotonically increasing resourceVersion,
an event log for watches (with a compaction point), and the write operations with their real
semantics: server-side apply (merge, field removal, conflicts, ``force``), updates by a named field
manager, create, status writes, and delete with UID preconditions and owner-reference cascades.
Every write maintains ``metadata.managedFields`` (``core.simulated.fields``) and applies the
server's defaults, strict validation and immutability checks (``core.simulated.schema``).

Constraint: synchronous and single-threaded (the owning ``SimulatedCluster`` calls it from one event
loop); it never awaits, so every write is atomic. Returned objects are copies. No I/O.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.model import ResourceKey
from core.simulated.discovery import CRD_GROUP_KIND, Discovery, kind_label, plural_label
from core.simulated.fields import (
    ManagedEntry,
    Path,
    changed_paths,
    conflicts,
    describe_path,
    dropped,
    entries_of,
    field_set,
    merge,
    owned_by_others,
    owner_uids,
    removable,
    remove_at,
    transfer,
    without,
)
from core.simulated.jsoncopy import json_copy
from core.simulated.objects import (
    decode_continue,
    encode_continue,
    position,
    rfc3339,
    same_object,
    spec_changed,
    strict_message,
    with_entry,
    without_bookkeeping,
)
from core.simulated.schema import (
    GENERATION_KINDS,
    apply_defaults,
    immutable_violations,
    undeclared_fields,
)
from core.simulated.selectors import Selector

_FIRST_RESOURCE_VERSION = 1000
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_UID_NAMESPACE = uuid.UUID("6f1c2a52-8d0e-4a39-9a51-2f3c7d0b9e11")
_PROPAGATIONS = ("Foreground", "Background", "Orphan")
Listener = Callable[["StoredEvent"], None]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One change, as a watch replays it."""

    resource_version: int
    type: str
    """``ADDED``, ``MODIFIED`` or ``DELETED``."""
    group_kind: tuple[str, str]
    obj: JSON
    old: JSON | None
    """The object before the change (None for ``ADDED``): lets a filtered watch see objects leave."""


class ObjectStore:
    """Objects, versions, the event log and the write path of one simulated cluster.

    Args:
        cluster: the cluster's name (in every error).
        clock: the wall clock for timestamps (injected in tests).
        max_events: the log is compacted to its newer half when it grows past this.
    """

    def __init__(self, cluster: str, *, clock: Callable[[], float], max_events: int = 50_000) -> None:
        self.cluster = cluster
        self.clock = clock
        self.discovery = Discovery()
        self.max_events = max_events
        self._objects: dict[ResourceKey, JSON] = {}
        self._version = _FIRST_RESOURCE_VERSION
        self._events: list[StoredEvent] = []
        self._compacted = _FIRST_RESOURCE_VERSION
        self._listeners: list[Listener] = []
        self._uids = 0
        self._ips = 0
        for name in _SYSTEM_NAMESPACES:
            self.create(self._resource("", "Namespace"), {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": name}}, manager="kube-apiserver")

    # ------------------------------------------------------------------------------------ reads

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion."""
        return self._version

    @property
    def compacted(self) -> int:
        """Watches from a resourceVersion older than this get 410 Gone."""
        return self._compacted

    def now(self) -> str:
        """The current time, RFC 3339."""
        return rfc3339(self.clock())

    def peek(self, key: ResourceKey) -> JSON | None:
        """The stored object itself (not a copy: callers must not modify it)."""
        return self._objects.get(key)

    def get(self, key: ResourceKey) -> JSON | None:
        """A copy of the object, or None."""
        obj = self._objects.get(key)
        return json_copy(obj) if obj is not None else None

    def objects(self, group_kind: tuple[str, str], namespace: str | None = None) -> list[JSON]:
        """Stored objects of a kind (not copies), sorted by namespace and name."""
        keys = sorted(k for k in self._objects if (k.group, k.kind) == group_kind
                      and (namespace is None or k.namespace == namespace))
        return [self._objects[k] for k in keys]

    def children(self, uid: str) -> Iterator[JSON]:
        """Stored objects with an ownerReference to ``uid``."""
        return (obj for obj in list(self._objects.values()) if uid in owner_uids(obj))

    def list_page(self, resource: APIResource, *, selector: Selector, limit: int, continue_token: str) -> JSON:
        """One page of a cluster-wide list (``continue`` tokens resume after the last key returned).

        Raises:
            ClusterError: 410 when the token's resourceVersion was compacted, 400 when it is malformed.
        """
        list_version, after = self._decode_continue(continue_token)
        matching = [o for o in self.objects(resource.group_kind)
                    if selector.matches((o.get("metadata") or {}).get("labels"))
                    and position(o) > after]
        page = matching[:limit] if limit > 0 else matching
        metadata: JSON = {"resourceVersion": str(list_version)}
        if len(page) < len(matching):
            metadata["continue"] = encode_continue(list_version, position(page[-1]))
            metadata["remainingItemCount"] = len(matching) - len(page)
        return {"apiVersion": resource.api_version, "kind": f"{resource.kind}List", "metadata": metadata,
                "items": json_copy(page)}

    def _decode_continue(self, token: str) -> tuple[int, tuple[str, str]]:
        if not token:
            return self._version, ("", "")
        try:
            version, after = decode_continue(token)
        except ValueError:
            raise self.error(400, "BadRequest", "invalid continue token") from None
        if version < self._compacted:
            raise self.error(410, "Expired", "The provided continue parameter is too old to display a consistent "
                             "list result. You can start a new list without the continue parameter.")
        return version, after

    def events_after(self, group_kind: tuple[str, str], version: int) -> list[StoredEvent]:
        """Logged events of a kind newer than ``version``.

        Raises:
            ClusterError: 410 Expired when ``version`` is older than the compaction point.
        """
        if version < self._compacted:
            raise self.error(410, "Expired", f"too old resource version: {version} ({self._compacted})")
        return [e for e in self._events if e.resource_version > version and e.group_kind == group_kind]

    def compact(self) -> int:
        """Forget the event log up to now (as etcd compaction does); the new compaction point."""
        self._compacted = self._version
        self._events.clear()
        return self._compacted

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every new event; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def error(self, status: int | None, reason: str, message: str) -> ClusterError:
        """A ``ClusterError`` as this cluster's server would answer."""
        return ClusterError(message, cluster=self.cluster, status=status, reason=reason)

    # ------------------------------------------------------------------------------------ writes

    def apply(
        self, resource: APIResource, config: Mapping[str, Any], *, manager: str, force: bool, dry_run: bool,
    ) -> JSON:
        """Server-side apply of ``config`` by ``manager``; the resulting (or predicted) object.

        Raises:
            ClusterError: 404 (kind or namespace missing), 409 (resourceVersion precondition, conflicts
                without ``force``), 422 (strict validation, immutable field).
        """
        body = self._admit(resource, config, apply=True)
        key = ResourceKey.of(body)
        live = self._objects.get(key)
        self._check_preconditions(resource, body, live)
        applied = without_bookkeeping(body)
        identity = (manager, "Apply", "")
        applied_set = field_set(applied, kind=resource.kind)
        entries = entries_of(live)
        found = conflicts(entries, identity=identity, applied=applied_set, live=live or {}, config=applied)
        if found and not force:
            raise self._conflict_error(found, resource)
        entries = transfer(entries, set(found), keep=identity)
        previous = next((e.fields for e in entries if e.identity == identity), set())
        merged = merge(without_bookkeeping(live or {}, status=False), applied, kind=resource.kind)
        for path in removable(dropped(previous, applied_set), owned_by_others(entries, identity)):
            remove_at(merged, path)
        merged = self._defaulted(resource, merged, dry_run=dry_run)
        entries = with_entry(entries, identity, applied_set, api_version=resource.api_version, time=self.now())
        return self._commit(resource, key, live, merged, entries, dry_run=dry_run)

    def update(
        self, key: ResourceKey, patch: Mapping[str, Any], *, manager: str, status: bool = False,
        copy_result: bool = True,
    ) -> JSON:
        """A strategic-merge-style patch by ``manager`` (operation ``Update``); ``None`` removes a field.

        Args:
            key: the object.
            patch: object-shaped changes (``{"spec": {"replicas": 5}}``); keyed lists merge by key.
            manager: the field manager (``kubectl-edit``, ``kube-controller-manager``…).
            status: write the status subresource (only ``patch["status"]`` is used, and replaces it).
            copy_result: return a copy (False: the stored object itself, for callers that drop it, such as
                the controllers, whose status writes are most of the store's work).

        Raises:
            ClusterError: 404 when the object does not exist, 422 on an immutable field.
        """
        live = self._objects.get(key)
        resource = self.discovery.lookup(key.group, key.kind)
        if live is None or resource is None:
            raise self.error(404, "NotFound", f'{_plural(resource, key)} "{key.name}" not found')
        if status:
            status_value = json_copy(dict(patch.get("status") or {}))  # the live status is replaced: not copied
            new = {k: status_value if k == "status" else json_copy(v) for k, v in live.items()}
            new.setdefault("status", status_value)
        else:
            new = self._defaulted(resource, merge(live, dict(patch), kind=key.kind, delete_nulls=True),
                                  dry_run=False)
        entries = self._update_entries(resource, live, new, manager=manager, status=status)
        return self._commit(resource, key, live, new, entries, dry_run=False, copy_result=copy_result)

    def create(self, resource: APIResource, obj: Mapping[str, Any], *, manager: str, dry_run: bool = False,
               keep_status: bool = False, copy_result: bool = True) -> JSON:
        """Create ``obj``; the stored (or predicted) object.

        Args:
            resource: the kind.
            obj: the object.
            manager: the field manager recorded for the ``Update`` entry.
            dry_run: predict without storing.
            keep_status: keep ``obj["status"]`` (controllers creating objects); the API drops it.

        Raises:
            ClusterError: 409 AlreadyExists, 404 (kind or namespace missing), 422 (strict validation).
        """
        meta = obj.get("metadata") or {}
        if not meta.get("name") and meta.get("generateName"):  # the API server appends 5 random characters
            suffix = "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            obj = {**obj, "metadata": {**meta, "name": f"{meta['generateName']}{suffix}"}}
        body = self._admit(resource, obj, apply=False)
        key = ResourceKey.of(body)
        if key in self._objects:
            raise self.error(409, "AlreadyExists", f'{plural_label(resource)} "{key.name}" already exists')
        new = self._defaulted(resource, without_bookkeeping(body, status=not keep_status), dry_run=dry_run)
        entries = self._update_entries(resource, None, new, manager=manager, status=False)
        return self._commit(resource, key, None, new, entries, dry_run=dry_run, copy_result=copy_result)

    def delete(self, key: ResourceKey, *, uid: str | None = None, propagation: str = "Background",
               dry_run: bool = False) -> bool:
        """Delete an object and, unless orphaned, its dependents; False when it did not exist.

        Raises:
            ClusterError: 409 when ``uid`` does not match, 400 for an unknown propagation policy.
        """
        if propagation not in _PROPAGATIONS:
            raise self.error(400, "BadRequest", f"unknown propagationPolicy {propagation!r}")
        live = self._objects.get(key)
        if live is None:
            return False
        live_uid = str(live["metadata"]["uid"])
        if uid and uid != live_uid:
            raise self.error(409, "Conflict", f"Precondition failed: UID in precondition: {uid}, "
                             f"UID in object meta: {live_uid}")
        if not dry_run:
            self._cascade(live, propagation)
            self._remove(key)
        return True

    # ------------------------------------------------------------------------------------ internals

    def _resource(self, group: str, kind: str) -> APIResource:
        resource = self.discovery.lookup(group, kind)
        assert resource is not None
        return resource

    def _admit(self, resource: APIResource, obj: Mapping[str, Any], *, apply: bool) -> JSON:
        served = self.discovery.lookup(*resource.group_kind)
        if served is None or served.version != resource.version:
            raise self.error(404, "NotFound", "the server could not find the requested resource")
        body: JSON = json_copy(dict(obj))
        if body.get("apiVersion") != served.api_version or body.get("kind") != served.kind:
            raise self.error(400, "BadRequest", f"the body's apiVersion/kind {body.get('apiVersion')}/"
                             f"{body.get('kind')} does not match {served.api_version}/{served.kind}")
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            raise self.error(422, "Invalid", f"{served.kind} is invalid: metadata.name: Required value: name is required")
        self._admit_scope(served, meta)
        undeclared = undeclared_fields(body, kind=served.kind, custom=self.discovery.is_custom(served.group_kind))
        if undeclared:
            raise self.error(422, "Invalid", strict_message(served, meta, undeclared, apply=apply))
        return body

    def _admit_scope(self, resource: APIResource, meta: JSON) -> None:
        if not resource.namespaced:
            meta.pop("namespace", None)
            return
        namespace = meta.get("namespace")
        if not namespace:
            raise self.error(422, "Invalid", f"a namespaced {resource.kind} needs metadata.namespace")
        if ResourceKey("", "Namespace", "", str(namespace)) not in self._objects:
            raise self.error(404, "NotFound", f'namespaces "{namespace}" not found')

    def _check_preconditions(self, resource: APIResource, body: JSON, live: JSON | None) -> None:
        meta = body["metadata"]
        wanted_rv, wanted_uid = meta.get("resourceVersion"), meta.get("uid")
        live_meta = (live or {}).get("metadata") or {}
        if wanted_rv and str(wanted_rv) != live_meta.get("resourceVersion"):
            raise self.error(409, "Conflict", f'Operation cannot be fulfilled on {plural_label(resource)} '
                             f'"{meta["name"]}": the object has been modified; please apply your changes to the '
                             "latest version and try again")
        if wanted_uid and live is not None and str(wanted_uid) != live_meta.get("uid"):
            raise self.error(409, "Conflict", f"Precondition failed: UID in precondition: {wanted_uid}, "
                             f"UID in object meta: {live_meta.get('uid')}")

    def _conflict_error(self, found: Mapping[Path, str], resource: APIResource) -> ClusterError:
        lines = [f'conflict with "{manager}" using {resource.api_version}: {describe_path(path)}'
                 for path, manager in sorted(found.items())]
        plural = "conflict" if len(lines) == 1 else "conflicts"
        return self.error(409, "Conflict", f"Apply failed with {len(lines)} {plural}: " + "\n".join(lines))

    def _defaulted(self, resource: APIResource, obj: JSON, *, dry_run: bool) -> JSON:
        return apply_defaults(obj, kind=resource.kind, next_ip=lambda: self._next_ip(commit=not dry_run))

    def _update_entries(self, resource: APIResource, live: JSON | None, new: JSON, *, manager: str,
                        status: bool) -> list[ManagedEntry]:
        identity = (manager, "Update", "status" if status else "")
        old_set = field_set(live, kind=resource.kind, status=status) if live is not None else set()
        removed = dropped(old_set, field_set(new, kind=resource.kind, status=status))
        changed = changed_paths(live, new, kind=resource.kind, status=status)
        entries = transfer(entries_of(live), changed | removed, keep=identity)
        if not changed and not removed:
            return entries
        current = next((e.fields for e in entries if e.identity == identity), set())
        fields = without(current | changed, removed)
        return with_entry(entries, identity, fields, api_version=resource.api_version, time=self.now())

    def _commit(
        self, resource: APIResource, key: ResourceKey, live: JSON | None, new: JSON,
        entries: list[ManagedEntry], *, dry_run: bool, copy_result: bool = True,
    ) -> JSON:
        if live is not None:
            problems = immutable_violations(live, new, kind=resource.kind)
            if problems:
                raise self.error(422, "Invalid", f'{kind_label(resource)} "{key.name}" is invalid: '
                                 + "; ".join(problems))
        self._set_bookkeeping(resource, live, new, entries, dry_run=dry_run)
        if live is not None and same_object(live, new):
            return json_copy(live) if copy_result else live
        if dry_run:
            new["metadata"]["resourceVersion"] = (live or {}).get("metadata", {}).get("resourceVersion", "")
            return new
        self._version += 1
        new["metadata"]["resourceVersion"] = str(self._version)
        self._objects[key] = new
        self._record("MODIFIED" if live is not None else "ADDED", resource, new, live)
        if resource.group_kind == CRD_GROUP_KIND:
            self._crd_written(key, new)
        return json_copy(new) if copy_result else new

    def _set_bookkeeping(self, resource: APIResource, live: JSON | None, new: JSON,
                         entries: list[ManagedEntry], *, dry_run: bool) -> None:
        meta = new.setdefault("metadata", {})
        live_meta = (live or {}).get("metadata") or {}
        meta["uid"] = live_meta.get("uid") or self._next_uid(commit=not dry_run)
        meta["creationTimestamp"] = live_meta.get("creationTimestamp") or self.now()
        if resource.kind in GENERATION_KINDS or self.discovery.is_custom(resource.group_kind):
            generation = int(live_meta.get("generation") or 0)
            meta["generation"] = generation + 1 if live is None or spec_changed(live, new) else generation
        meta["managedFields"] = [entry.to_json() for entry in entries]

    def _record(self, kind: str, resource: APIResource, obj: JSON, old: JSON | None) -> None:
        event = StoredEvent(self._version, kind, resource.group_kind, obj, old)
        self._events.append(event)
        if len(self._events) > self.max_events:
            drop = len(self._events) // 2
            self._compacted = self._events[drop - 1].resource_version
            del self._events[:drop]
        for listener in list(self._listeners):
            listener(event)

    def _remove(self, key: ResourceKey) -> None:
        obj = self._objects.pop(key, None)
        resource = self.discovery.lookup(key.group, key.kind)
        if obj is None or resource is None:
            return
        self._version += 1
        final = json_copy(obj)
        final["metadata"]["resourceVersion"] = str(self._version)
        self._record("DELETED", resource, final, obj)
        if resource.group_kind == CRD_GROUP_KIND:
            self._crd_removed(obj)

    def _cascade(self, obj: JSON, propagation: str) -> None:
        uid = str(obj["metadata"]["uid"])
        for child in list(self.children(uid)):
            child_key = ResourceKey.of(child)
            if propagation == "Orphan":
                refs = [r for r in child["metadata"]["ownerReferences"] if r.get("uid") != uid]
                self.update(child_key, {"metadata": {"ownerReferences": refs or None}}, manager="kube-controller-manager")
            else:
                self.delete(child_key, propagation=propagation)
        if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
            name = obj["metadata"]["name"]
            for key in [k for k in self._objects if k.namespace == name]:
                self.delete(key, propagation="Background")

    def _crd_written(self, key: ResourceKey, crd: JSON) -> None:
        conditions = (crd.get("status") or {}).get("conditions") or ()
        if self.discovery.add_crd(crd) is None or any(c.get("type") == "Established" for c in conditions):
            return
        established = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
             "lastTransitionTime": self.now()},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": self.now()},
        ]
        names = (crd.get("spec") or {}).get("names") or {}
        stored = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
        self.update(key, {"status": {"conditions": established, "acceptedNames": names, "storedVersions": stored}},
                    manager="kube-apiserver", status=True)

    def _crd_removed(self, crd: JSON) -> None:
        group_kind = self.discovery.remove_crd(crd)
        if group_kind is not None:
            for key in [k for k in self._objects if (k.group, k.kind) == group_kind]:
                self._remove(key)

    def _next_uid(self, *, commit: bool) -> str:
        number = self._uids + 1
        if commit:
            self._uids = number
        return str(uuid.uuid5(_UID_NAMESPACE, f"{self.cluster}/{number}"))

    def _next_ip(self, *, commit: bool) -> str:
        number = self._ips + 1
        if commit:
            self._ips = number
        return f"10.96.{number // 250}.{number % 250 + 1}"


def _plural(resource: APIResource | None, key: ResourceKey) -> str:
    return plural_label(resource) if resource is not None else key.kind.lower()
