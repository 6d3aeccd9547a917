"""A sync's apply answer as the object's server-side prediction: no dry run of what was just applied.

The engine dry-runs every desired object against each new live ``resourceVersion`` (``FleetEngine._dry_run``).
After a sync applies an object, the server's answer *is* the live object at its new version, and a dry run of
the same body against it would predict that same object (a server-side apply of the body the field manager
already applied changes nothing). So the answer is kept as the prediction for (desired digest, answered
version), and the watch event of that version finds it instead of sending one more dry run per object.

Constraint: pure. Only when the body applied is exactly the engine's desired object (as ``dry_run_body`` sends
it): an apply that left fields out (``respect_ignore``) or a rollback to another revision teaches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.engine.evaluate import Predicted
from core.engine.targets import Desired
from core.live.drift import dry_run_body
from core.model import ResourceKey


def predicted_from_apply(desired: Desired | None, key: ResourceKey, body: Mapping[str, Any],
                         answer: Mapping[str, Any]) -> Predicted | None:
    """The prediction a dry run of ``desired``'s object at ``key`` would give against ``answer``, or None
    when the applied ``body`` is not that object (or the answer has no version)."""
    if desired is None:
        return None
    obj = desired.objects.get(key)
    version = str((answer.get("metadata") or {}).get("resourceVersion", ""))
    if obj is None or not version or dry_run_body(obj) != dry_run_body(body):
        return None
    return Predicted(desired.digest_of(key), version, predicted=dict(answer))
