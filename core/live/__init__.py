"""The live-state adapter: the only code that talks to Kubernetes API servers.

Wiring, per cluster (the engine does this)::

    context = load_kubeconfig(path).context(name)             # kubeconfig.py (kubectl semantics)
    client = KubeClient(cluster=name, context=context, settings=watch_settings)   # kube.py
    api = guard(client, read_only=ro, on_refused=journal)      # guard.py: the one write chokepoint
    cache = ClusterCache(name, unreachable_after=watch_settings.unreachable_after)  # cache.py
    watcher = ClusterWatcher(api, cache, kinds=kinds, settings=watch_settings, on_change=wake)  # cluster.py
    await watcher.start(); ...; await watcher.ensure_kinds(more)
    result = await dry_run_apply(api, watcher.resource_for(g, k), desired, field_manager="fleetdeck")  # drift.py
    await watcher.stop(); await api.close()

Constraint: nothing here imports ``core.desired``, ``core.sync``, ``core.engine``, ``textual`` or ``rich``.
"""
