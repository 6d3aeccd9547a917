"""Options and stages of a sync operation (the vocabulary shared by ``stages`` and ``operation``).

Constraint: values only; no I/O.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.model import ResourceKey
from core.reconcile.health import ScriptedHealth
from core.reconcile.ignore import IgnoreRule


class Stage(StrEnum):
    """Where the step machine is."""

    BEGIN = "begin"
    PREFLIGHT = "preflight"
    NAMESPACE = "namespace"
    WAVE_INFRA = "wave-infra"
    WAVE_APPLY = "wave-apply"
    WAVE_HEALTH = "wave-health"
    HOOKS = "hooks"
    PRUNE = "prune"
    RECORD = "record"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class OperationOptions:
    """How an operation runs, beyond what its plan says."""

    create_namespace: str = ""
    """The app's destination namespace, created before the first wave when missing (empty: never)."""
    allow_empty: bool = False
    """Allow pruning every resource of an app whose desired state is empty."""
    confirmed_prunes: bool = False
    """The operator confirmed prunes of objects marked ``Prune=confirm``."""
    automated: bool = False
    """Started by automation (recorded so automation never retries a failed revision)."""
    self_heal: bool = False
    """An automated sync undoing drift (of the drifted resources only): recorded in history as self-heal."""
    reason: str = ""
    """Why (shown in the journal; for a rollback, the pause reason)."""
    take_lease: bool = True
    """Take the app's operation Lease (False only when the caller already holds it)."""
    lease_duration: float = 60.0
    lease_renew: float = 15.0
    wait_between_waves: bool = True
    """Wait until a wave is healthy before the next one (gitops-engine's wave semantics)."""
    wait_for_health: bool = False
    """Also wait for the last wave to become healthy before pruning and succeeding."""
    health_timeout: float = 300.0
    poll_interval: float = 1.0
    """Pause between health checks while waiting (a ``step()`` waits at most this long)."""
    wave_delay: float = 0.0
    """Extra pause after a healthy wave (Argo CD uses 2 s)."""
    prune_propagation: str = "Foreground"
    respect_ignore: tuple[IgnoreRule, ...] = ()
    """Ignore rules whose fields are left out of an apply when another field manager owns them live
    (``core.reconcile.ignore.respect_ignore``); empty: every field is applied as Git says."""
    health_checks: ScriptedHealth | None = None
    """Custom health scripts the engine loaded: the health waits judge with them as the rows do."""
    on_applied: Callable[[ResourceKey, Mapping[str, Any], Mapping[str, Any]], None] | None = None
    """Told ``(key, the body applied, the server's answer)`` after each object applied (not dry run): the engine
    keeps the answer as the object's server-side prediction instead of dry-running it again."""


def new_operation_id() -> str:
    """A fresh operation id: ``op-<unix time>-<random>``."""
    return f"op-{int(time.time())}-{secrets.token_hex(4)}"
