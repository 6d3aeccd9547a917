"""The pure, synchronous heart of fleetdeck: normalize, compare, judge health, order and pair.

Nothing here performs I/O, awaits, or imports the Kubernetes client or GitPython (an import-linter
contract enforces it); the engine calls these functions, in a thread for large batches.

Public entry points:

* ``diff.compare`` / ``diff.compare_predicted``: a ``ResourceDiff`` per resource (local or dry-run).
* ``normalize.normalize``, ``ignore.apply_ignore_rules``, ``secrets.mask_object``.
* ``health.health_of`` / ``health.app_health``.
* ``plan.order_for_apply`` / ``plan.order_for_prune`` / ``plan.prunable`` / ``plan.sync_wave``.
* ``tracking.add_tracking`` / ``tracking.tracking_id`` / ``tracking.tracking_of``.
* ``pairing.pair``; ``drift_report.drift_report`` for ``fleetdeck drift``.
"""
