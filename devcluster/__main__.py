"""Command line of ``scripts/dev-cluster``: ``up``, ``down``, ``status``, ``restart-apiserver``, ``compact``.

``up`` leaves the processes running after it exits (they live in their own sessions); ``down``
stops exactly what the state file records. Default state directory: ``<repo>/.dev-cluster``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devcluster.binaries import REPO_ROOT, BinariesNotFoundError
from devcluster.cluster import ControlPlane
from devcluster.handles import ControlPlaneError, default_names

DEFAULT_STATE_DIR = REPO_ROOT / ".dev-cluster"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dev-cluster", description="Local Kubernetes clusters for fleetdeck."
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start etcd and N clusters, wait until ready")
    up.add_argument("--clusters", type=int, default=2, help="number of clusters fd-a, fd-b, ... (default 2)")
    up.add_argument("--names", help="comma-separated cluster names instead of fd-a, fd-b, ...")
    up.add_argument("--nodes", type=int, default=1, help="fake kwok Nodes per cluster (default 1)")
    up.add_argument(
        "--apiserver-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra kube-apiserver flag for every cluster, e.g. --apiserver-arg=--watch-cache=false (repeatable)",
    )
    sub.add_parser("down", help="stop everything 'up' started")
    sub.add_parser("status", help="show the recorded processes")
    restart = sub.add_parser("restart-apiserver", help="stop and start one cluster's kube-apiserver")
    restart.add_argument("name")
    sub.add_parser("compact", help="compact the shared etcd at its current revision")
    return parser


def _loaded(state_dir: Path) -> ControlPlane:
    plane = ControlPlane.load(state_dir)
    if plane is None or not plane.is_running():
        raise ControlPlaneError(f"not running (no live processes recorded in {state_dir / 'state.json'})")
    return plane


def cmd_up(args: argparse.Namespace) -> int:
    """Start the clusters unless they already run; print the KUBECONFIG export line."""
    existing = ControlPlane.load(args.state_dir)
    if existing is not None and existing.is_running():
        print(f"already up: {', '.join(existing.names)}", file=sys.stderr)
        print(f"export KUBECONFIG={existing.kubeconfig}")
        return 0
    names = tuple(args.names.split(",")) if args.names else default_names(args.clusters)
    plane = ControlPlane(
        args.state_dir, names=names, nodes=args.nodes, apiserver_args=tuple(args.apiserver_arg)
    ).start()
    contexts = ", ".join(f"{c.admin_context}/{c.viewer_context}" for c in plane.clusters.values())
    print(f"contexts: {contexts}", file=sys.stderr)
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop every recorded process."""
    plane = ControlPlane.load(args.state_dir)
    if plane is None:
        print("not running (no state file)", file=sys.stderr)
        return 0
    count = len(plane.records)
    plane.stop()
    print(f"stopped {count} process(es)", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print one line per recorded process; exit 1 when nothing runs."""
    plane = ControlPlane.load(args.state_dir, progress=None)
    if plane is None:
        print("not running (no state file)")
        return 1
    print(f"{'cluster':<10} {'role':<24} {'pid':>7} {'alive':<6} {'port':>6} {'rss':>8}")
    for row in plane.status():
        rss = "-" if row["rss_mib"] is None else f"{row['rss_mib']} MiB"
        print(
            f"{row['cluster']:<10} {row['role']:<24} {row['pid']:>7} {'yes' if row['alive'] else 'NO':<6} "
            f"{row['port'] or '-':>6} {rss:>8}"
        )
    print(f"kubeconfig: {plane.kubeconfig}")
    return 0 if plane.is_running() else 1


def cmd_restart_apiserver(args: argparse.Namespace) -> int:
    """Restart one apiserver with the same port and flags."""
    took = _loaded(args.state_dir).restart_apiserver(args.name)
    print(f"{args.name}: kube-apiserver ready again after {took:.1f}s", file=sys.stderr)
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    """Compact etcd at its current revision."""
    print(f"compacted at revision {_loaded(args.state_dir).compact()}")
    return 0


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "restart-apiserver": cmd_restart_apiserver,
    "compact": cmd_compact,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ControlPlaneError, BinariesNotFoundError, ValueError) as exc:
        print(f"dev-cluster: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
