"""Argo CD's Application sync options, as its documentation lists them: what ``fleetdeck sync --sync-option``
accepts (``operation.sync.syncOptions`` of the Application, docs/owners.md).

Argo CD compares each option as the exact string ``Key=value`` (gitops-engine's ``HasOption``), so a
misspelt key or value is not an error there: it is silently a different, meaningless option. fleetdeck
checks them against the documented set (docs/user-guide/sync-options.md of argoproj/argo-cd) and refuses
anything else with the spelling it expected.

Constraint: pure, no imports beyond the standard library (the command line checks options before any engine
starts; ``core.sync.owners.argocd`` checks them again when it builds the patch).
"""

from __future__ import annotations

SYNC_OPTIONS: dict[str, tuple[str, ...]] = {
    "CreateNamespace": ("true",),
    "ServerSideApply": ("true", "false"),
    "Replace": ("true",),
    "PruneLast": ("true",),
    "ApplyOutOfSyncOnly": ("true",),
    "PrunePropagationPolicy": ("foreground", "background", "orphan"),
    "Validate": ("false",),
    "SkipDryRunOnMissingResource": ("true",),
    "FailOnSharedResource": ("true",),
    "RespectIgnoreDifferences": ("true",),
    "ClientSideApplyMigration": ("false",),
    "Prune": ("false", "confirm"),
    "Delete": ("false", "confirm"),
}
"""Application-level sync options and the values Argo CD's documentation gives each (the default is the
absent option, so e.g. ``CreateNamespace=false`` is not listed: it means nothing to Argo CD)."""

RESOURCE_ONLY: dict[str, str] = {
    "Force": "Force=true is read only from a resource's argocd.argoproj.io/sync-options annotation (with "
             "Replace=true), never from the Application's sync options",
}
"""Documented options that Argo CD reads only per resource: refused with the reason."""


def check_sync_option(text: str) -> str:
    """``text`` if it is a documented Argo CD Application sync option (``Key=value``, exact spelling).

    Raises:
        ValueError: not ``Key=value``, an unknown key, or a value the documentation does not give the key;
            the message names what is accepted (and the right spelling of a miscased one).
    """
    key, sep, value = text.partition("=")
    if not sep or not key or not value or text != text.strip():
        raise ValueError(f"{text!r} is not KEY=VALUE (e.g. CreateNamespace=true)")
    if key in RESOURCE_ONLY:
        raise ValueError(f"{text}: {RESOURCE_ONLY[key]}")
    allowed = SYNC_OPTIONS.get(key)
    if allowed is None:
        spelled = next((k for k in SYNC_OPTIONS if k.lower() == key.lower()), "")
        hint = f" (did you mean {spelled}?)" if spelled else ""
        raise ValueError(f"{key!r} is not one of Argo CD's documented Application sync options{hint}: "
                         + ", ".join(sorted(SYNC_OPTIONS)))
    if value not in allowed:
        raise ValueError(f"{text}: Argo CD documents {key} only as " + " or ".join(f"{key}={v}" for v in allowed)
                         + " (values are compared exactly, case included)")
    return text


def check_sync_options(options: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Every option checked (``check_sync_option``), duplicates dropped, order kept; a key given twice with
    different values is an error (Argo CD would read whichever it looks up first)."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for option in options:
        check_sync_option(option)
        key = option.partition("=")[0]
        if key in seen and seen[key] != option:
            raise ValueError(f"{seen[key]} and {option}: one value per option")
        if key not in seen:
            seen[key] = option
            out.append(option)
    return tuple(out)
