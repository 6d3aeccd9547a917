"""Desired state: the only code that touches Git and renders manifests.

Public API, in the order the engine uses it:

* ``fleet.find_fleet_file`` / ``fleet.load_fleet`` → ``FleetConfig`` (``fleet.fleet_schema`` for ``fleetdeck schema``)
* ``repo.ConfigRepo(spec, cache_dir)``: ``fetch``, ``resolve``, ``materialize``, ``log``, ``is_ancestor``,
  ``commits_between``, ``cleanup``
* ``fleet.discover_imported_apps`` + ``fleet.merge_apps`` when the fleet file opts in to imports
* ``AppSpec.targets(clusters)`` → (cluster, path) pairs
* ``render.Renderer``: ``render_app`` (cached per repo, sha, path, options, and for a Flux app the digest of
  its ``substituteFrom`` values, which ``flux.load_substitutions`` reads through a getter the engine gives)
  and ``history``

Constraint: imports nothing from ``core.live``, ``core.sync``, ``core.engine``, ``textual`` or ``rich``.
This package module stays empty of imports so that loading one submodule does not load Git.
"""
