"""Build a Flux ``Kustomization``'s path as kustomize-controller does: generated kustomization, then post-build
variable substitution.

Role: kustomize-controller does not build ``spec.path`` as it is. When the path has no kustomization file it
generates one listing every manifest (``*.yaml``/``*.yml``, and subdirectories that are kustomizations); then it
rewrites that kustomization with the object's ``targetNamespace`` (``namespace``), ``namePrefix``,
``nameSuffix``, ``patches``, ``components`` and ``images``, and builds it. After the build, when
``postBuild`` declares variables, every object not opted out (label or annotation
``kustomize.toolkit.fluxcd.io/substitute: disabled``) has its YAML expanded (see ``envsubst``).

fleetdeck does the same with the real kustomize, on a private copy: ``flux_tree`` mirrors (hard links, else
copies) only the directories the build may read (the path, its bases, the components and theirs) into a
temporary directory beside the materialized tree, and rewrites the kustomization there. The shared tree is
never written. ``substitute_output`` expands the build's YAML one document at a time.

Constraint: variable values may come from Secrets: no error, warning, log line or ``repr`` here carries a
value; ``SubstitutionValues`` keys caches by an HMAC of its values, never the values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from core.desired.envsubst import SubstitutionError, check_names, substitute
from core.desired.kustomize import (
    is_remote_reference,
    kustomization_file,
    read_kustomization,
    referenced_dirs,
)
from core.desired.plaindir import check_symlinks, plain_app
from core.desired.spec import FluxOptions, SubstituteRef
from core.desired.yamlload import DEFAULT_BUDGET, compose_chunk, split_documents
from core.errors import RenderError

SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
STRICT = False
"""kustomize-controller's ``StrictPostBuildSubstitutions`` feature gate is off by default: an unset variable
without a default expands to the empty string (fleetdeck says so in a warning naming the variables)."""
_MANIFEST_SUFFIXES = (".yaml", ".yml")
_REFERENCE = re.compile(r"(?<!\$)\$\{#?([_A-Za-z0-9]+)")
"""Variables an object's YAML refers to (``$${`` escapes excluded), to say where Secret values land."""
_DIGEST_KEY = secrets.token_bytes(32)
"""Per-process key of the values' HMAC: the digest in a cache key reveals nothing guessable about a value."""


@dataclass(frozen=True, slots=True)
class SubstitutionValues:
    """Variables read from ``substituteFrom`` sources of one cluster. ``repr`` shows names, never values."""

    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    secret_names: frozenset[str] = frozenset()
    """Variables whose value came from a Secret."""
    digest: str = ""
    """HMAC-SHA256 of the values with a per-process key ("" when there are none)."""

    def __repr__(self) -> str:
        return f"SubstitutionValues(names={sorted(self.values)!r}, digest={self.digest[:12]!r})"

    @classmethod
    def of(cls, values: Mapping[str, str], secret_names: frozenset[str] = frozenset()) -> SubstitutionValues:
        """Values with their digest."""
        if not values:
            return cls()
        text = json.dumps(sorted(values.items()), ensure_ascii=False).encode()
        digest = hmac.new(_DIGEST_KEY, text, hashlib.sha256).hexdigest()
        return cls(MappingProxyType(dict(values)), secret_names & set(values), digest)


NO_VALUES = SubstitutionValues()

ObjectGetter = Callable[[str, str, str], Awaitable[Mapping[str, Any] | None]]
"""``(kind, name, namespace)`` → the ConfigMap or Secret, or None when it does not exist."""


async def load_substitutions(refs: Sequence[SubstituteRef], namespace: str, get: ObjectGetter) -> SubstitutionValues:
    """The variables of ``substituteFrom``, in order (a later source overrides an earlier one), as
    kustomize-controller reads them: ConfigMap ``data``, Secret ``data`` (base64-decoded); newlines removed.

    Raises:
        RenderError: a non-optional source does not exist or cannot be read (the message names the
            ConfigMap or Secret, never its data).
    """
    values: dict[str, str] = {}
    secret_names: set[str] = set()
    for ref in refs:
        what = f"{ref.kind}/{ref.name}"
        try:
            obj = await get(ref.kind, ref.name, namespace)
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(f"substitute from '{what}' in namespace {namespace}: cannot be read "
                              f"({type(exc).__name__}: {_first_line(exc)})",
                              hint="fleetdeck needs get on it to render what Flux would apply; nothing was synced") from None
        if obj is None:
            if ref.optional:
                continue
            raise RenderError(f"substitute from '{what}' error: {ref.kind} {namespace}/{ref.name} not found",
                              hint="create it in the cluster, or mark the source optional; nothing was synced")
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for key, raw in (data or {}).items():
            text = _decoded(raw) if ref.kind == "Secret" else str(raw)
            values[str(key)] = text.replace("\n", "")
            if ref.kind == "Secret":
                secret_names.add(str(key))
            else:
                secret_names.discard(str(key))
    return SubstitutionValues.of(values, frozenset(secret_names))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def _decoded(raw: Any) -> str:
    try:
        return base64.b64decode(str(raw), validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


# ---------------------------------------------------------------------------------------------- the tree


def make_flux_tree(root: Path, app_dir: Path, flux: FluxOptions, *, allow_remote: bool = False) -> Path:
    """A private tree (same relative layout as ``root``) whose ``app_dir`` kustomization is the one
    kustomize-controller would build. The caller removes it (``remove_flux_tree``).

    Raises:
        RenderError: a component path is not local and relative, a kustomization cannot be read, or a
            symlink under a directory to copy leaves the repository.
    """
    relative_app = app_dir.relative_to(root)
    original = kustomization_file(app_dir)
    dirs = [app_dir]
    if original is not None:
        dirs += referenced_dirs(root, app_dir, allow_remote=allow_remote)
    else:
        for nested in plain_app(root, app_dir).kustomizations:
            dirs += referenced_dirs(root, nested, allow_remote=allow_remote)
    components = _components(root, app_dir, flux)
    for component in components:
        candidate = Path(os.path.normpath(app_dir / component))
        if candidate.is_dir():
            dirs += [candidate, *referenced_dirs(root, candidate, allow_remote=allow_remote)]
    check_symlinks(root, dirs)  # before copying: a linked directory leaving the repo must not be copied in
    try:  # beside the tree: same filesystem, so files are hard-linked rather than copied
        mirror = Path(tempfile.mkdtemp(prefix=".flux-build-", dir=root.parent))
    except OSError:  # a tree in a read-only place (a render of a checkout): the system's temporary directory
        mirror = Path(tempfile.mkdtemp(prefix="fleetdeck-flux-build-"))
    try:
        for directory in _outermost(dirs):
            _mirror_dir(root, directory, mirror)
        target = mirror / relative_app
        target.mkdir(parents=True, exist_ok=True)
        if original is not None:
            kustomization = dict(read_kustomization(original, root))
            (target / original.name).unlink(missing_ok=True)
            name = original.name
        else:
            kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                             "resources": _generated_resources(root, app_dir)}
            name = "kustomization.yaml"
        merged = merge_kustomization(kustomization, flux, [c for c in components if (app_dir / c).exists()
                                                           or not flux.ignore_missing_components])
        (target / name).write_text(json.dumps(merged, indent=1, default=str) + "\n", encoding="utf-8")
    except BaseException:
        remove_flux_tree(mirror)
        raise
    return mirror


def remove_flux_tree(mirror: Path) -> None:
    """Delete a tree made by ``make_flux_tree``."""
    shutil.rmtree(mirror, ignore_errors=True)


def _components(root: Path, app_dir: Path, flux: FluxOptions) -> list[str]:
    for component in flux.components:
        joined = Path(os.path.normpath(app_dir / component))
        if (is_remote_reference(component) or component.startswith("/") or
                not joined.is_relative_to(root)):
            raise RenderError(f"component path '{component}' must be local and relative",
                              hint="Flux refuses it too; fix spec.components of the Kustomization")
    return list(flux.components)


def _outermost(dirs: Sequence[Path]) -> list[Path]:
    kept: list[Path] = []
    for directory in sorted(set(dirs), key=lambda d: len(d.parts)):
        if not any(directory.is_relative_to(k) for k in kept):
            kept.append(directory)
    return kept


def _mirror_dir(root: Path, directory: Path, mirror: Path) -> None:
    """Hard-link (else copy) every file under ``directory`` into ``mirror``; symlinks stay symlinks (the
    render's symlink check judges them there, against the mirror's root)."""
    for current, subdirs, files in os.walk(directory):
        subdirs[:] = [d for d in subdirs if d != ".git"]
        here = Path(current)
        out = mirror / here.relative_to(root)
        out.mkdir(parents=True, exist_ok=True)
        for name in [*files, *(d for d in subdirs if (here / d).is_symlink())]:
            source, dest = here / name, out / name
            if dest.exists() or dest.is_symlink():
                continue
            if source.is_symlink():
                os.symlink(os.readlink(source), dest)
            elif source.is_file():
                try:
                    os.link(source, dest)
                except OSError:
                    shutil.copy2(source, dest)


def _generated_resources(root: Path, app_dir: Path) -> list[str]:
    """What kustomize-controller's generator lists for a path without a kustomization: every ``*.yaml`` and
    ``*.yml`` below it, and subdirectories holding a kustomization (not descended into)."""
    app = plain_app(root, app_dir)
    entries = [p for p in app.files if p.suffix in _MANIFEST_SUFFIXES] + list(app.kustomizations)
    return sorted(p.relative_to(app_dir).as_posix() for p in entries)


def merge_kustomization(kustomization: Mapping[str, Any], flux: FluxOptions, components: Sequence[str]) -> dict[str, Any]:
    """``kustomization`` with the Flux object's generator fields applied as kustomize-controller applies them:
    ``targetNamespace`` replaces ``namespace``, a non-empty prefix or suffix replaces the file's, patches
    and components are appended, images replace (field by field) the entry of the same name or are appended."""
    merged = dict(kustomization)
    if flux.target_namespace:
        merged["namespace"] = flux.target_namespace
    if flux.name_prefix:
        merged["namePrefix"] = flux.name_prefix
    if flux.name_suffix:
        merged["nameSuffix"] = flux.name_suffix
    if flux.patches:
        patches = list(merged.get("patches") or [])
        for patch in flux.patches:
            entry: dict[str, Any] = {"patch": patch.patch}
            if patch.target:
                entry["target"] = json.loads(patch.target)
            patches.append(entry)
        merged["patches"] = patches
    if components:
        merged["components"] = [*(merged.get("components") or []), *components]
    if flux.images:
        images = [dict(i) for i in merged.get("images") or [] if isinstance(i, dict)]
        for image in flux.images:
            found = next((i for i in images if i.get("name") == image.name), None)
            fields = {"newName": image.new_name, "newTag": image.new_tag, "digest": image.digest}
            if found is None:
                images.append({"name": image.name, **{k: v for k, v in fields.items() if v}})
                continue
            if image.new_name:
                found["newName"] = image.new_name
            if image.new_tag or image.digest:
                found.pop("newTag", None)
                found.pop("digest", None)
                found.update({k: v for k, v in (("newTag", image.new_tag), ("digest", image.digest)) if v})
        merged["images"] = images
    return merged


# ---------------------------------------------------------------------------------------------- substitution


@dataclass(frozen=True, slots=True)
class Substituted:
    """The build's YAML after post-build substitution."""

    text: str
    substituted: int = 0
    """Objects whose YAML was expanded."""
    warnings: tuple[str, ...] = ()


def variables(flux: FluxOptions, values: SubstitutionValues) -> dict[str, str]:
    """The variables of a build: ``substituteFrom`` values, then ``substitute`` (which wins)."""
    merged = dict(values.values)
    merged.update((k, v.replace("\n", "")) for k, v in flux.substitute)
    return merged


def substitute_output(text: str, flux: FluxOptions, values: SubstitutionValues, *,
                      strict: bool = STRICT) -> Substituted:
    """Expand ``${…}`` in each object of a build's YAML, as kustomize-controller's post-build step does:
    nothing at all when no variable is declared; objects labelled or annotated
    ``kustomize.toolkit.fluxcd.io/substitute: disabled`` are left as built.

    Raises:
        RenderError: a variable name is invalid, an expression is malformed, or (strict) a variable is
            unset; the message names the object and the variable, never a value.
    """
    declared = variables(flux, values)
    if not declared:
        return Substituted(text)
    check_names(declared)
    from_secrets = values.secret_names - {name for name, _ in flux.substitute}
    chunks: list[str] = []
    count = 0
    unset: set[str] = set()
    exposed: list[str] = []
    for offset, chunk in split_documents(text):
        obj = _first_object(chunk, offset)
        if obj is None or _disabled(obj):
            chunks.append(chunk)
            continue
        try:
            chunks.append(substitute(chunk, declared, strict=strict))
        except SubstitutionError as exc:
            raise SubstitutionError(f"post-build substitution of {_identity(obj)}: {exc}",
                                    hint="escape a literal ${ as $${, define the variable, or annotate the object "
                                         f"{SUBSTITUTE_KEY}: disabled") from None
        count += 1
        if not strict:
            unset.update(_unset_names(chunk, declared))
        secret_vars = sorted(from_secrets & set(_REFERENCE.findall(chunk)))
        if secret_vars and obj.get("kind") != "Secret":
            exposed.append(f"{_identity(obj)} ({', '.join(secret_vars)})")
    notes = [f"post-build substitution: variables without a value expand to empty text (as Flux does unless "
             f"strict): {', '.join(sorted(unset))}"] if unset else []
    if exposed:
        notes.append("post-build substitution puts values from a Secret into objects that are not Secrets, which "
                     "fleetdeck shows (diffs, YAML) as anyone reading them in the cluster sees them: "
                     + "; ".join(exposed))
    return Substituted("".join(chunks), count, tuple(notes))


def _first_object(chunk: str, offset: int) -> dict[str, Any] | None:
    try:
        for _node, value in compose_chunk(chunk, offset, DEFAULT_BUDGET):
            if isinstance(value, dict):
                return value
    except yaml.YAMLError:
        return None
    return None


def _disabled(obj: Mapping[str, Any]) -> bool:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    for field_name in ("labels", "annotations"):
        marks = metadata.get(field_name) if isinstance(metadata, dict) else None
        if isinstance(marks, dict) and marks.get(SUBSTITUTE_KEY) == "disabled":
            return True
    return False


def _identity(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return f"{obj.get('kind', '?')} {namespace + '/' if namespace else ''}{name}"


def _unset_names(chunk: str, declared: Mapping[str, str]) -> set[str]:
    """Variables referenced bare (no default) in ``chunk`` that have no value: strict mode lists them."""
    names: set[str] = set()
    probe = dict(declared)
    for _ in range(64):  # each round finds one more unset name
        try:
            substitute(chunk, probe, strict=True)
            return names
        except SubstitutionError as exc:
            missing = str(exc).rpartition('"')[0].rpartition('"')[2]
            if not missing or missing in probe:
                return names
            names.add(missing)
            probe[missing] = ""
    return names


def set_common_metadata(objects: Sequence[dict[str, Any]], flux: FluxOptions) -> None:
    """``commonMetadata`` as kustomize-controller applies it (``ssa.SetCommonMetadata``): each label and
    annotation set on every object, overriding the object's own value for that key."""
    if not flux.common_labels and not flux.common_annotations:
        return
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            continue
        for field_name, pairs in (("labels", flux.common_labels), ("annotations", flux.common_annotations)):
            if pairs:
                current = metadata.get(field_name)
                metadata[field_name] = {**(current if isinstance(current, dict) else {}), **dict(pairs)}
