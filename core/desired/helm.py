"""Run the real Helm (``helm template``) on a chart directory of a materialized tree.

Role: render a chart the way Argo CD does: ``helm template RELEASE CHART --namespace NS -f FILE…
[-f inline values] [--set/--set-string …] [--include-crds] [--kube-version V] [--api-versions …]
--skip-tests``, under the same budgets as kustomize: a timeout (the process group is killed), an
address-space limit (``prlimit --as``), an output cap, every YAML/JSON input screened for size and
alias bombs before Helm starts, and a clean environment (a fresh ``HOME`` holding Helm's config, cache
and data directories, no ``KUBECONFIG``, no ``PATH``, an unreachable HTTP proxy). Inline values are
written to a 0600 file inside that private directory and removed with it.

The binary: ``FLEETDECK_HELM`` if set, else ``helm`` on PATH; when neither exists the render fails with
an error naming what is missing. Outputs are also cached by content (chart tree digest, values digest,
arguments, binary), so a commit that does not touch the chart does not run Helm again.

Constraint: never reimplements Helm; never fetches charts (dependencies must be vendored in ``charts/``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shutil
import stat
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.desired.kustomize import BuildOutput, ToolWords, collect_output, limited
from core.desired.spec import HelmOptions, HelmParameter
from core.desired.yamlload import DEFAULT_BUDGET, Budget, budget_violation
from core.errors import RenderError

HELM_ENV = "FLEETDECK_HELM"
CHART_FILE = "Chart.yaml"
_UNREACHABLE_PROXY = "http://127.0.0.1:9"
_CACHE_ENTRIES = 64
_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a chart sees of its destination cluster as ``.Capabilities``."""

    kube_version: str = ""
    """The API server's ``gitVersion``; empty when unknown (Helm's default then applies)."""
    api_versions: tuple[str, ...] = ()
    """``group/version`` and ``group/version/Kind`` served, sorted."""


def with_capabilities(options: HelmOptions, capabilities: Capabilities) -> HelmOptions:
    """``options`` with the cluster's kube version and API versions where the app did not set its own."""
    return dataclasses.replace(
        options,
        kube_version=options.kube_version or capabilities.kube_version,
        api_versions=options.api_versions or capabilities.api_versions,
    )


def is_chart(directory: Path) -> bool:
    """Whether ``directory`` is a Helm chart (holds ``Chart.yaml``)."""
    return (directory / CHART_FILE).is_file()


def helm_binary(override: str | None = None) -> str | None:
    """The helm to run: ``override``, else ``$FLEETDECK_HELM``, else ``helm`` on PATH; None when none is set."""
    return override or os.environ.get(HELM_ENV) or shutil.which("helm")


def require_helm(binary: str | None, where: str, *, what: str = "chart") -> str:
    """``binary`` when it is an executable file; ``what`` is ``chart`` (a chart app) or ``helmCharts`` (a
    kustomization using them), for the message.

    Raises:
        RenderError: no helm was found, or ``FLEETDECK_HELM`` names something that cannot run.
    """
    subject = f"Helm chart at {where}" if what == "chart" else f"kustomization at {where} uses helmCharts and"
    if binary is None:
        raise RenderError(f"{subject} needs the helm binary: install Helm 3.x/4.x or set {HELM_ENV}",
                          hint=f"put helm on PATH, or set {HELM_ENV}=/path/to/helm; nothing was applied for this app")
    path = Path(binary if os.sep in binary else shutil.which(binary) or binary)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RenderError(f"{subject} needs the helm binary, but {binary} is not an executable file",
                          hint=f"install Helm 3.x/4.x, or point {HELM_ENV} at its binary")
    return str(path.resolve())


def escape_set_value(value: str) -> str:
    """A ``--set`` value with unescaped commas escaped (Helm would split on them), as Argo CD does."""
    out: list[str] = []
    previous = ""
    for char in value:
        out.append("\\," if char == "," and previous != "\\" else char)
        previous = char
    return "".join(out)


def value_file(root: Path, chart_dir: Path, name: str) -> Path | None:
    """The value file ``name`` (relative to the chart directory, or repo-absolute with a leading ``/``),
    None when it does not exist.

    Raises:
        RenderError: the file is remote, or lies (or links) outside the repository.
    """
    if "://" in name:
        raise RenderError(f"value file {name!r} is a URL; only files of the repository are read",
                          hint="commit the values file into the repo")
    base = root if name.startswith("/") else chart_dir
    candidate = Path(os.path.normpath(base / name.lstrip("/")))
    real_root = root.resolve()
    if candidate != root and root not in candidate.parents:
        raise RenderError(f"value file {name!r} leaves the repository", hint="value files must be inside the repo")
    if not candidate.exists():
        return None
    target = candidate.resolve()
    if target != real_root and real_root not in target.parents:
        raise RenderError(f"value file {name!r} is a symlink out of the repository")
    if not candidate.is_file():
        raise RenderError(f"value file {name!r} is not a file")
    return candidate


def template_args(release: str, chart: str, *, namespace: str, options: HelmOptions,
                  value_files: Sequence[str], inline_file: str | None) -> list[str]:
    """The arguments after the binary, in Argo CD's order: value files, inline values, parameters."""
    args = ["template", release, chart, "--skip-tests"]
    if namespace:
        args += ["--namespace", namespace]
    for file in value_files:
        args += ["--values", file]
    if inline_file is not None:
        args += ["--values", inline_file]
    for parameter in options.parameters:
        args += _set_flag(parameter)
    if options.include_crds:
        args.append("--include-crds")
    if options.kube_version:
        args += ["--kube-version", options.kube_version]
    for version in options.api_versions:
        args += ["--api-versions", version]
    return args


def _set_flag(parameter: HelmParameter) -> list[str]:
    flag = "--set-string" if parameter.force_string else "--set"
    return [flag, f"{parameter.name}={escape_set_value(parameter.value)}"]


@dataclass(frozen=True, slots=True)
class _Prepared:
    args: list[str]
    key: str
    """The content key; empty when the output must not be cached (a symlinked directory in the chart)."""


def _tree_digest(directory: Path, into: hashlib._Hash) -> bool:
    """Hash every file's path and bytes into ``into``; False when a symlinked directory makes the tree
    uncertain (Helm follows it, ``os.walk`` does not), so the output is not cached by content."""
    complete = True
    for current, subdirs, files in os.walk(directory):
        subdirs.sort()
        if any(Path(current, d).is_symlink() for d in subdirs):
            complete = False
        for name in sorted(files):
            path = Path(current, name)
            into.update(path.relative_to(directory).as_posix().encode() + b"\0")
            into.update(path.read_bytes() if path.is_file() else b"")
            into.update(b"\0")
    return complete


def _binary_identity(binary: str) -> str:
    info = os.stat(binary)
    return f"{binary}:{info.st_size}:{info.st_mtime_ns}"


class _OutputCache:
    """Helm outputs by content key, least recently used dropped first."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, BuildOutput] = OrderedDict()
        self.size = 0
        self.hits = 0

    def get(self, key: str) -> BuildOutput | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: str, output: BuildOutput) -> None:
        self.entries[key] = output
        self.size += len(output.stdout)
        while len(self.entries) > _CACHE_ENTRIES or self.size > _CACHE_BYTES:
            _, dropped = self.entries.popitem(last=False)
            self.size -= len(dropped.stdout)


OUTPUTS = _OutputCache()
"""Helm outputs by (binary, chart tree digest, values digest, arguments)."""


async def template(
    chart_dir: Path,
    *,
    root: Path,
    binary: str | None,
    options: HelmOptions,
    namespace: str,
    timeout: float,
    max_bytes: int,
    memory_limit: int | None = None,
    budget: Budget = DEFAULT_BUDGET,
) -> BuildOutput:
    """Run ``helm template`` on ``chart_dir`` (a directory of the tree ``root``).

    Raises:
        RenderTimeout: Helm took longer than ``timeout`` seconds (it was killed).
        RenderError: helm is missing, a value file is missing, outside the repo or over ``budget``, Helm failed (its stderr
            is in the message), ran out of memory, or printed more than ``max_bytes``.
    """
    where = chart_dir.relative_to(root).as_posix() or "."
    helm = require_helm(binary, where)
    home = tempfile.mkdtemp(prefix="fleetdeck-helm-")
    try:
        prepared = await asyncio.to_thread(_prepare, chart_dir, root, helm, options, namespace, home, budget)
        cached = OUTPUTS.get(prepared.key) if prepared.key else None
        if cached is not None:
            return cached
        output = await _run(limited((helm, *prepared.args), memory_limit), where=where, root=root, home=home,
                            timeout=timeout, max_bytes=max_bytes, memory_limit=memory_limit)
        if prepared.key:
            OUTPUTS.put(prepared.key, output)
        return output
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _prepare(chart_dir: Path, root: Path, helm: str, options: HelmOptions, namespace: str, home: str,
             budget: Budget) -> _Prepared:
    files: list[str] = []
    digest = hashlib.sha256()
    digest.update(_binary_identity(helm).encode() + b"\0")
    cacheable = _tree_digest(chart_dir, digest)
    for name in options.value_files:
        found = value_file(root, chart_dir, name)
        if found is None:
            if options.ignore_missing_value_files:
                continue
            where = chart_dir.relative_to(root).as_posix() or "."
            raise RenderError(f"value file {name!r} of the chart at {where} does not exist at this revision",
                              hint="fix valueFiles, or set ignoreMissingValueFiles")
        relative = found.relative_to(root).as_posix()
        data = found.read_bytes()
        problem = budget_violation(data, relative, budget=budget)
        if problem is not None:
            raise RenderError(f"{relative} is refused before helm runs: {problem}",
                              hint="fix the file in Git; nothing was rendered or applied for this app")
        files.append(relative)
        digest.update(b"values\0" + data + b"\0")
    inline: str | None = None
    if options.values.strip():
        problem = budget_violation(options.values.encode(), "inline values", budget=budget)
        if problem is not None:
            raise RenderError(f"the app's inline Helm values are refused: {problem}")
        inline = os.path.join(home, "inline-values.yaml")
        fd = os.open(inline, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(options.values)
        digest.update(b"inline\0" + options.values.encode() + b"\0")
    chart = chart_dir.relative_to(root).as_posix() or "."
    args = template_args(options.release_name, chart, namespace=namespace, options=options,
                         value_files=files, inline_file=inline)
    keyed = [a if a != inline else "<inline>" for a in args]
    digest.update("\0".join(keyed).encode())
    return _Prepared(args, digest.hexdigest() if cacheable else "")


HELM_WORDS = ToolWords(
    run="helm template", output="helm template output", reproduce="helm template",
    timeout_hint="a template may loop; run `helm template` on the chart to check",
    oom_hint="raise render_memory_limit only if the chart is really that large",
    size_hint="split the chart, or raise max_manifest_bytes",
)

def _environment(home: str) -> dict[str, str]:
    return {
        "HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home, "XDG_DATA_HOME": home, "TMPDIR": home,
        "HELM_CONFIG_HOME": os.path.join(home, "config"), "HELM_CACHE_HOME": os.path.join(home, "cache"),
        "HELM_DATA_HOME": os.path.join(home, "data"), "HELM_PLUGINS": os.path.join(home, "plugins"),
        "KUBECONFIG": os.path.join(home, "no-kubeconfig"), "LANG": "C", "PATH": "",
        "HTTP_PROXY": _UNREACHABLE_PROXY, "HTTPS_PROXY": _UNREACHABLE_PROXY, "NO_PROXY": "",
    }


async def _run(command: Sequence[str], *, where: str, root: Path, home: str, timeout: float, max_bytes: int,
               memory_limit: int | None) -> BuildOutput:
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=root, env=_environment(home), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    return await collect_output(
        proc, words=HELM_WORDS, where=where, root=root, timeout=timeout, max_bytes=max_bytes,
        memory_limit=memory_limit, redact=lambda text: text.replace(f"{home}{os.sep}", "").replace(home, "~"),
    )
