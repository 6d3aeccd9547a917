"""Sync ordering and prune safety.

Role: order applies by (wave, kind, name) with Namespaces and CRDs moved ahead of what depends on them
(gitops-engine ``syncTasks.Sort`` and ``adjustDeps``), order prunes in reverse, and decide whether a live
object may be pruned: only with all three ownership signals (inventory, self-referencing tracking, owner
label) and no opt-out. Constraint: pure; the engine turns these orders into waves and requests.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from core.model import ResourceKey
from core.reconcile.jsonpath import as_dict, get_in
from core.reconcile.tracking import APP_LABEL, app_label_value, is_tracked_by, tracking_of

__all__ = [
    "KIND_ORDER",
    "is_tracked_by",
    "kind_rank",
    "order_for_apply",
    "order_for_prune",
    "prunable",
    "sync_options",
    "sync_wave",
]

T = TypeVar("T")

WAVE_ANNOTATIONS = ("fleetdeck.io/sync-wave", "argocd.argoproj.io/sync-wave")
SYNC_OPTIONS_ANNOTATIONS = ("fleetdeck.io/sync-options", "argocd.argoproj.io/sync-options")
RECONCILE_ANNOTATION = "fleetdeck.io/reconcile"

KIND_ORDER: tuple[str, ...] = (
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
    "CronJob", "IngressClass", "Ingress", "APIService",
)  # fmt: skip
"""Argo CD's apply order of kinds; kinds not listed (custom resources) come last."""

_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}


def _identity(item: Any) -> Mapping[str, Any]:
    """The item is the object itself."""
    return item  # type: ignore[no-any-return]


def kind_rank(kind: str) -> int:
    """Position of ``kind`` in ``KIND_ORDER``; unknown kinds rank after every known one."""
    return _KIND_RANK.get(kind, len(KIND_ORDER))


def sync_wave(obj: Mapping[str, Any]) -> tuple[int, str | None]:
    """The object's sync wave and, for a malformed annotation, a warning.

    ``fleetdeck.io/sync-wave`` wins over ``argocd.argoproj.io/sync-wave``; a value that is not an integer
    counts as wave 0.

    Returns:
        ``(wave, warning)``; the warning is None when the annotation is absent or valid.
    """
    annotations = as_dict(get_in(obj, "metadata", "annotations"))
    for name in WAVE_ANNOTATIONS:
        if name in annotations:
            raw = str(annotations[name]).strip()
            try:
                return int(raw), None
            except ValueError:
                return 0, f"ignoring invalid {name} {raw!r}: not an integer; using wave 0"
    return 0, None


def _sort_key(obj: Mapping[str, Any]) -> tuple[int, int, str, str, str]:
    """(wave, kind rank, name, namespace, group): the base order before dependency bubbling."""
    key = ResourceKey.of(obj)
    return sync_wave(obj)[0], kind_rank(key.kind), key.name, key.namespace, key.group


def _dependency(obj: Mapping[str, Any]) -> str | None:
    """What a Namespace or CRD provides (``ns:<name>``, ``crd:<group>/<kind>``), else None."""
    key = ResourceKey.of(obj)
    if (key.group, key.kind) == ("", "Namespace"):
        return f"ns:{key.name}"
    if (key.group, key.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        return f"crd:{get_in(obj, 'spec', 'group', default='')}/{get_in(obj, 'spec', 'names', 'kind', default='')}"
    return None


def _needs(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """What an object depends on: its namespace, and the CRD of its kind."""
    key = ResourceKey.of(obj)
    needs = [f"crd:{key.group}/{key.kind}"]
    return (*needs, f"ns:{key.namespace}") if key.namespace else tuple(needs)


def order_for_apply(
    items: Iterable[T], *, obj_of: Callable[[T], Mapping[str, Any]] = _identity
) -> list[tuple[T, int]]:
    """Items in apply order, each with its effective wave.

    Sorted by (wave, kind order, name); then a Namespace or CRD that sorts after something depending on
    it moves right before its first dependent and takes that dependent's wave (``adjustDeps``).

    Args:
        items: desired objects, or anything ``obj_of`` maps to its object.
        obj_of: how to get the object of an item.

    Returns:
        ``(item, wave)`` pairs, first to apply first.
    """
    ordered = [
        (item, sync_wave(obj_of(item))[0]) for item in sorted(items, key=lambda i: _sort_key(obj_of(i)))
    ]
    first_user: dict[str, int] = {}
    index = 0
    while index < len(ordered):
        item, _ = ordered[index]
        provided = _dependency(obj_of(item))
        target = first_user.get(provided) if provided else None
        if target is not None:
            ordered.insert(target, (ordered.pop(index)[0], ordered[target][1]))
            first_user = {dep: (i + 1 if i >= target else i) for dep, i in first_user.items()}
        else:
            for need in _needs(obj_of(item)):
                first_user.setdefault(need, index)
        index += 1
    return ordered


def order_for_prune(
    items: Iterable[T], *, obj_of: Callable[[T], Mapping[str, Any]] = _identity
) -> list[tuple[T, int]]:
    """Items in prune order: the apply order reversed (higher waves and dependents first)."""
    return list(reversed(order_for_apply(items, obj_of=obj_of)))


def sync_options(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's sync options (``Prune=false,Force=true``) as a dict, fleetdeck's winning over Argo's."""
    annotations = as_dict(get_in(obj, "metadata", "annotations"))
    options: dict[str, str] = {}
    for name in reversed(SYNC_OPTIONS_ANNOTATIONS):
        for part in str(annotations.get(name) or "").split(","):
            option, _, value = part.strip().partition("=")
            if option:
                options[option] = value.strip()
    return options


def prunable(
    live_obj: Mapping[str, Any], *, app: str, inventory: Collection[ResourceKey], confirmed: bool = False
) -> tuple[bool, str]:
    """Whether ``app`` may delete ``live_obj``, and why not.

    Args:
        live_obj: the live object (fetched fresh just before the prune).
        app: the app that wants to prune it.
        inventory: the keys the app's persisted inventory records as applied.
        confirmed: the operator confirmed objects marked ``Prune=confirm``.

    Returns:
        ``(True, "")``, or ``(False, reason)`` naming the first missing signal or opt-out.
    """
    key = ResourceKey.of(live_obj)
    tracking = tracking_of(live_obj)
    labels = as_dict(get_in(live_obj, "metadata", "labels"))
    annotations = as_dict(get_in(live_obj, "metadata", "annotations"))
    prune_option = sync_options(live_obj).get("Prune", "").lower()
    checks = (
        (key in inventory, "not in the app's inventory"),
        (tracking is not None and tracking.app == app, f"tracking annotation does not name app {app!r}"),
        (
            tracking is not None and tracking.self_referenced,
            "tracking annotation was copied from another object",
        ),
        (labels.get(APP_LABEL) == app_label_value(app), f"label {APP_LABEL} does not match app {app!r}"),
        (prune_option != "false", "Prune=false"),
        (prune_option != "confirm" or confirmed, "Prune=confirm: waiting for the operator's confirmation"),
        (annotations.get(RECONCILE_ANNOTATION) != "disabled", f"{RECONCILE_ANNOTATION}: disabled"),
        (get_in(live_obj, "metadata", "deletionTimestamp") is None, "already being deleted"),
    )
    return next(((False, reason) for ok, reason in checks if not ok), (True, ""))
