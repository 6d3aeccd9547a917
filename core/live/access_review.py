"""What the credentials of a cluster could change: the read-only start-up access review.

Role: a read-only console must run with credentials that cannot write, not only behind fleetdeck's own
refusal (``core.live.guard``). ``write_powers`` asks the API server, with SelfSubjectAccessReviews (never
stored), about the powers that matter most: ``create``/``patch``/``delete`` on the kinds a sync writes
(ConfigMaps, Secrets, Deployments), ``create pods/exec`` (a shell in any pod), ``get pods/exec`` on servers
older than 1.35 (where a WebSocket exec needed only ``get``), and ``get``/``create nodes/proxy`` (the
kubelet's API, exec included, behind the API server's back). The answer is the list of powers the
server allows, in words (``"create pods/exec"``), for a loud warning.

Constraint: the reviews run concurrently and a review that fails is reported as unknown, never as
allowed or denied; reviews are cluster-wide (no namespace), which is what "could write" means.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from core.errors import FleetdeckError
from core.live.api import APIResource, KubeAPI

CONFIGMAPS = APIResource("", "v1", "ConfigMap", "configmaps", True)
SECRETS = APIResource("", "v1", "Secret", "secrets", True)
DEPLOYMENTS = APIResource("apps", "v1", "Deployment", "deployments", True)
POD_EXEC = APIResource("", "v1", "Pod", "pods/exec", True)
NODE_PROXY = APIResource("", "v1", "Node", "nodes/proxy", False)

WRITE_VERBS = ("create", "patch", "delete")
WEBSOCKET_EXEC_NEEDS_CREATE = (1, 35)
"""From this Kubernetes version on, a WebSocket exec needs ``create pods/exec``; before it, ``get``."""


@dataclass(frozen=True, slots=True)
class Review:
    """One question for the server: may these credentials ``verb`` ``resource``?"""

    verb: str
    resource: APIResource

    def __str__(self) -> str:
        return f"{self.verb} {self.resource.plural}"


@dataclass(frozen=True, slots=True)
class Powers:
    """The answer: what the server allows, and what it could not say."""

    allowed: tuple[Review, ...]
    unknown: tuple[Review, ...]

    @property
    def may_write(self) -> bool:
        return bool(self.allowed)

    def describe(self) -> str:
        """``"create, patch, delete configmaps; create pods/exec"``: allowed powers grouped by resource."""
        grouped: dict[str, list[str]] = {}
        for review in self.allowed:
            grouped.setdefault(review.resource.plural, []).append(review.verb)
        return "; ".join(f"{', '.join(verbs)} {plural}" for plural, verbs in grouped.items())


def reviews_for(server_version: str) -> tuple[Review, ...]:
    """The reviews to run against a server of ``server_version`` (``gitVersion``, ``""`` when unknown:
    then the pre-1.35 ``get pods/exec`` question is asked too)."""
    reviews = [Review(verb, kind) for kind in (CONFIGMAPS, SECRETS, DEPLOYMENTS) for verb in WRITE_VERBS]
    reviews.append(Review("create", POD_EXEC))
    version = _minor_version(server_version)
    if version is None or version < WEBSOCKET_EXEC_NEEDS_CREATE:
        reviews.append(Review("get", POD_EXEC))
    reviews += [Review("get", NODE_PROXY), Review("create", NODE_PROXY)]
    return tuple(reviews)


async def write_powers(api: KubeAPI, server_version: str = "") -> Powers:
    """Run every review of ``reviews_for(server_version)`` concurrently."""
    reviews = reviews_for(server_version)

    async def ask(review: Review) -> bool | None:
        try:
            return await api.can_i(review.verb, review.resource)
        except FleetdeckError:
            return None

    answers = await asyncio.gather(*(ask(r) for r in reviews))
    return Powers(allowed=tuple(r for r, a in zip(reviews, answers, strict=True) if a),
                  unknown=tuple(r for r, a in zip(reviews, answers, strict=True) if a is None))


def _minor_version(git_version: str) -> tuple[int, int] | None:
    match = re.match(r"v?(\d+)\.(\d+)", git_version)
    return (int(match[1]), int(match[2])) if match else None
