"""The in-process simulated cluster: a ``KubeAPI`` for ``fleetdeck demo`` and fast tests, never a real one.

It implements the same ``core.live.api.KubeAPI`` protocol as ``core.live.kube.KubeClient`` (the only code
that talks to real API servers), with an object store, watches, discovery, a field-manager model and a few
controllers (Deployments, ReplicaSets, StatefulSets, Jobs, pods, a kubelet recording Events). Only the demo
and tests use it: an import-linter contract keeps the engine, sync, live and desired layers off it.
"""
