"""Argo CD custom health checks (``health.lua`` resource customizations), run unmodified in a Lua sandbox.

Role: implements ``core.reconcile.health.ScriptedHealth``. Each script is an Argo CD health check as
written for ``argocd-cm`` or the ``resource_customizations`` directory: it reads the global ``obj`` (the
live object as a Lua table) and returns a table ``hs`` with ``status`` (Healthy, Progressing, Degraded,
Suspended, Missing, Unknown) and ``message``. The scripts run in LuaJIT 2.1 (``lupa.luajit21``; Lua 5.1
semantics like Argo CD's gopher-lua), falling back to lupa's Lua 5.1 or default runtime.

Which script judges an object (Argo CD's order): an argocd-cm entry for the exact ``group/Kind`` (``Kind``
for the core group), then an argocd-cm wildcard entry (``*.crossplane.io/*``), then a directory script for
the exact kind, then a directory wildcard (``_.crossplane.io/_`` in a directory name, ``_`` standing for
``*``). Within one tier the source configured first wins, and among wildcards the most specific pattern
(most literal characters). Patterns are globs (``*``, ``?``, ``[...]``) matched against ``group/Kind``.

Sandbox: the script sees ``obj``, the base functions of Lua (``pairs``, ``ipairs``, ``type``, ``tostring``,
``tonumber``, ``pcall``, ``error``, ``select``, ``unpack``, ``next``, ``setmetatable``…), read-only
``string``, ``table`` and ``math`` libraries, and Argo CD's safe ``os`` (``os.time``, ``os.date``; also
what ``require("os")`` returns, as in Argo CD). There is no ``io``, no other ``os`` function, no ``load``,
``loadstring``, ``dofile``, ``loadfile``, ``require`` of anything else, ``debug``, ``package``,
``collectgarbage``, ``getfenv``/``setfenv``, ``coroutine``, ``jit`` or ``string.dump``; the string
metatable is protected. Every call gets fresh globals, so nothing one call sets is seen by the next.
Each call runs under an instruction budget (a count hook installed before ``debug`` is taken away; the
JIT compiler is off so the hook always fires), a memory budget (lupa's ``max_memory`` allocator limit,
counted from the runtime's use before the call; the tables of the object parts the script reads count,
the conversion work on the Python side does not) and a wall-time limit (checked in the hook); a script
cannot catch these with ``pcall``. A script that fails, exceeds a budget or returns something else than a
table with a valid status judges its object ``Unknown`` with ``health script failed: …``; its message is
sanitized (``core.sanitize.clean``). One Lua runtime per thread; each script is compiled once per runtime.

The object crosses into Lua as tables filled in as the script reads them: its top two levels come with
the call (nearly every script reads ``metadata``, ``spec`` and ``status``); a deeper map's scalars and
lists (with the maps inside the lists) are set the first time the script touches it, its nested maps wait
the same way; ``pairs``, ``next``, ``rawget``, ``getmetatable`` and ``setmetatable`` fill a map first, so the
tables behave as gopher-lua's (``#`` and ``ipairs`` on lists, ``nil`` for absent fields, JSON ``null``
dropped from maps and lists). ``metadata.managedFields`` is not passed (no health check reads it, and it
is often the largest part of an object).

Known limit: a single library call (a pathological ``string.find`` pattern over a long string) runs to its
end before the hook can stop it.

Constraint: pure; no I/O. Scripts arrive as text (``HealthScript``); ``core.desired.health_scripts``
reads them from directories and argocd-cm files.
"""

from __future__ import annotations

import fnmatch
import importlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from core.model import Health, HealthStatus
from core.sanitize import clean
from core.settings import HealthSettings

ARGOCD_CM = 0
"""Tier of scripts from argocd-cm entries (checked before directory scripts, as Argo CD does)."""
DIRECTORY = 1
"""Tier of scripts from a ``resource_customizations``-style directory."""

FAILED = "health script failed: "
MESSAGE_LIMIT = 1000
"""Longest message kept from a script (characters)."""
HOOK_EVERY = 1000
"""VM instructions between two calls of the budget hook."""
CLOCK_EVERY = 10
"""Hook calls between two looks at the wall clock."""

_VALID = {status.value: status for status in HealthStatus}
FLAT_LIMIT = 2000
"""Most values a map's level is passed as (beyond it, as two tables: Lua's C stack is bounded)."""
_SCALARS = frozenset({str, int, float, bool})
"""JSON scalar types (null is left out: nil in Lua)."""


@dataclass(frozen=True, slots=True)
class HealthScript:
    """One ``health.lua``: the kinds it judges, its text and where it came from."""

    pattern: str
    """``group/Kind`` (``Kind`` for the core group), or a glob over that (``*.crossplane.io/*``)."""
    source: str
    """The Lua text, exactly as Argo CD would run it."""
    where: str
    """Where it was configured, for ``Health.source``: ``argoproj.io/Rollout/health.lua`` or
    ``argocd-cm resource.customizations.health.cert-manager.io_Certificate``."""
    tier: int = DIRECTORY
    """``ARGOCD_CM`` or ``DIRECTORY``."""

    @property
    def wildcard(self) -> bool:
        """Whether the pattern is a glob rather than one kind."""
        return any(ch in self.pattern for ch in "*?[")


def kind_key(group: str, kind: str) -> str:
    """Argo CD's key of a kind: ``group/Kind``, or ``Kind`` for the core group."""
    return f"{group}/{kind}" if group else kind


def _specificity(script: HealthScript) -> int:
    return sum(1 for ch in script.pattern if ch not in "*?[]")


def _lua_module() -> ModuleType:
    """``lupa.luajit21`` (Lua 5.1 semantics, as gopher-lua), else ``lupa.lua51``, else lupa's default."""
    for name in ("lupa.luajit21", "lupa.lua51", "lupa"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("lupa is not installed")


# The privileged part runs once per runtime with the full standard library; it keeps what the sandbox
# needs in locals and gives Python one function, ``run``. Scripts never see this chunk's environment.
_SETUP = r"""
local now, expand, instruction_budget, hook_every, clock_every = ...
local sethook, force_metatable = debug.sethook, debug.setmetatable
local pcall_, xpcall_, error_, type_, select_, rawget_ = pcall, xpcall, error, type, select, rawget
local setfenv_, setmetatable_, tostring_, loadstring_ = setfenv, setmetatable, tostring, loadstring
local pairs_, next_, rawset_, getmetatable_ = pairs, next, rawset, getmetatable
if jit then jit.off() end
getmetatable("").__metatable = false

-- The live object becomes Lua tables as the script reads it: a map is filled in (its scalars and
-- lists, lists converted whole so # and ipairs work) the first time it is touched; its nested maps
-- wait the same way. pairs, next, rawget, getmetatable and setmetatable fill a map first, so a script
-- cannot tell a waiting map from a filled one.
local sources = setmetatable_({}, {__mode = "k"})
local waiting = {__metatable = false}
local function lazy(source)
  local t = setmetatable_({}, waiting)
  sources[t] = source
  return t
end
-- expand() returns one level of a map flat, as (key, tag, value) triples: tag 0 a scalar, tag 1 the
-- handle of a nested map, tag 2 a list of n items, each (tag, value) in turn, tag 3 a map inside a list
-- given inline as n triples (or, for a large map, -1 and two tables: its plain entries and its nested
-- maps' handles).
local list_from, map_from
function list_from(r, i, n)
  local list = {}
  for j = 1, n do
    local tag, v = r[i], r[i + 1]
    i = i + 2
    if tag == 1 then v = lazy(v) elseif tag == 2 then v, i = list_from(r, i, v)
    elseif tag == 3 then v, i = map_from(r, i, v) end
    list[j] = v
  end
  return list, i
end
function map_from(r, i, n, t)
  t = t or {}
  for _ = 1, n do
    local k, tag, v = r[i], r[i + 1], r[i + 2]
    i = i + 3
    if tag == 1 then v = lazy(v) elseif tag == 2 then v, i = list_from(r, i, v)
    elseif tag == 3 then v, i = map_from(r, i, v) end
    rawset_(t, k, v)
  end
  return t, i
end
local function put(t, first, ...)
  if first == -1 then
    local plain, maps = ...
    for k, v in next_, plain do rawset_(t, k, v) end
    for k, handle in next_, maps do rawset_(t, k, lazy(handle)) end
    return t
  end
  return (map_from({...}, 1, first, t))
end
local function fill(t)
  local source = sources[t]
  if source == nil then return t end
  sources[t] = nil
  force_metatable(t, nil)
  return put(t, expand(source))
end
waiting.__index = function(t, k) return rawget_(fill(t), k) end
waiting.__newindex = function(t, k, v) rawset_(fill(t), k, v) end

local function readonly(lib, name, skip)
  local copy = {}
  for k, v in pairs_(lib) do if not (skip and skip[k]) then copy[k] = v end end
  return setmetatable_({}, {
    __index = copy,
    __newindex = function() error_(name .. " is read-only in health scripts", 2) end,
    __metatable = false,
  })
end

local safe_os = readonly({time = os.time, date = os.date}, "os")
local call = {failure = nil}

local function checked(ok, ...)
  if call.failure then error_(call.failure, 0) end
  if not ok and select_(1, ...) == "not enough memory" then
    call.failure = "memory budget exhausted"
    error_(call.failure, 0)
  end
  return ok, ...
end

local base = {
  assert = assert, error = error, ipairs = ipairs, select = select,
  tonumber = tonumber, tostring = tostring, type = type, unpack = unpack, rawequal = rawequal,
  _VERSION = _VERSION,
  next = function(t, k) return next_(fill(t), k) end,
  pairs = function(t) return pairs_(fill(t)) end,
  rawget = function(t, k) return rawget_(fill(t), k) end,
  getmetatable = function(t) return getmetatable_(fill(t)) end,
  setmetatable = function(t, m) return setmetatable_(fill(t), m) end,
  pcall = function(f, ...) return checked(pcall_(f, ...)) end,
  xpcall = function(f, handler) return checked(xpcall_(f, handler)) end,
  print = function() end,
  string = readonly(string, "string", {dump = true}),
  table = readonly(table, "table"),
  math = readonly(math, "math"),
  os = safe_os,
  require = function(name)
    if name == "os" then return safe_os end
    error_("require is not available to health scripts (" .. tostring_(name) .. ")", 2)
  end,
}
local env_meta = {__index = base, __metatable = false}
local idle = {}  -- a compiled script's environment between calls (so it keeps no object alive)

local function compile(text, where)
  local fn, err = loadstring_(text, "=" .. where)
  if fn == nil then return false, err end
  return fn, false
end

-- Text for Python: at most 4000 bytes, and as its bytes when not ASCII (Python decodes them leniently;
-- a script may produce any bytes).
local sub_, find_, byte_ = string.sub, string.find, string.byte
local function text(s)
  s = sub_(s, 1, 4000)
  if find_(s, "[\128-\255]") then return {byte_(s, 1, #s)} end
  return s
end

local function judge(ok, hs)
  if not ok then
    if call.failure then return "error", call.failure end
    if hs == "not enough memory" then return "error", "memory budget exhausted" end
    if type_(hs) == "string" or type_(hs) == "number" then return "error", text(tostring_(hs)) end
    return "error", "the script raised a " .. type_(hs)
  end
  if hs == nil then return "empty", false, false end
  if type_(hs) ~= "table" then return "error", "expect table output from Lua script, not " .. type_(hs) end
  fill(hs)
  local status, message = rawget_(hs, "status"), rawget_(hs, "message")
  if type_(status) ~= "string" then status = nil end
  if type_(message) == "number" then message = tostring_(message) end
  if type_(message) ~= "string" then message = nil else message = text(message) end
  return "ok", status, message
end

local hooks, deadline = 0, 0
local function hook()
  hooks = hooks + 1
  if call.failure == nil then
    if hooks > instruction_budget then
      call.failure = "instruction budget exhausted"
    elseif hooks % clock_every == 0 and now() > deadline then
      call.failure = "time limit exceeded"
    end
  end
  if call.failure then error_(call.failure, 0) end
end

local function run(fn, until_, ...)
  local env = setmetatable_({obj = put({}, ...)}, env_meta)
  env._G = env
  setfenv_(fn, env)
  call.failure, hooks, deadline = nil, 0, until_
  sethook(hook, "", hook_every)
  local ok, hs = pcall_(fn)
  sethook()
  setfenv_(fn, idle)
  return judge(ok, hs)
end

return compile, run
"""


class _Runtime:
    """One Lua state (per thread) with its compiled scripts."""

    def __init__(self, module: ModuleType, settings: HealthSettings) -> None:
        self.runtime = module.LuaRuntime(max_memory=0, register_eval=False, register_builtins=False,
                                         unpack_returned_tuples=True, attribute_filter=_opaque)
        self.memory = settings.script_memory
        self.seconds = settings.script_seconds
        budget = max(1, settings.script_instructions // HOOK_EVERY)
        setup = self.runtime.execute("return function(...) " + _SETUP + " end")
        self.compile, self.run = setup(time.monotonic, self.expand, budget, HOOK_EVERY, CLOCK_EVERY)
        self.compiled: dict[int, Any] = {}
        self.maps: list[Mapping[str, Any]] = []
        """The maps of the object being judged; Lua refers to them by index (no Python object crosses)."""
        self.limit = 0
        """The memory limit in force (0 while no script runs)."""
        """id(HealthScript) → compiled chunk, or the compile error as a str."""
        self.error_type: type[BaseException] = module.LuaError

    def call(self, script: HealthScript, obj: Mapping[str, Any]) -> tuple[Any, ...]:
        fn = self.compiled.get(id(script))
        if fn is None:
            compiled, error = self.compile(script.source, script.where)
            fn = self.compiled[id(script)] = compiled if compiled is not False else str(error)
        if isinstance(fn, str):
            return ("error", fn)
        runtime = self.runtime
        self.maps = [obj]
        self.limit = runtime.get_memory_used() + self.memory
        runtime.set_max_memory(self.limit)
        try:
            result: tuple[Any, ...] = self.run(fn, time.monotonic() + self.seconds, *self.expand(0))
        except self.error_type as exc:  # outside the script's pcall: the budget ran out in the runner
            message = str(exc)
            result = ("error", "memory budget exhausted" if "not enough memory" in message else message)
        finally:
            runtime.set_max_memory(0)
            self.limit = 0
            self.maps = []
        if result[0] == "error":
            runtime.gccollect()
        return result

    def expand(self, handle: int) -> tuple[Any, ...]:
        """One level of a map for Lua (the root before the call; a nested map when the script touches it).

        Returns, flat, ``(key, tag, value)`` per entry: tag 0 a scalar; tag 1 a nested map's handle (its index
        in ``self.maps``; the Lua side fills it in the same way when touched); tag 2 a list, whose value is
        its length, followed by each item as ``(tag, value)``. No table is built on this side, and nothing
        of a map is converted before the script touches it. A level of more than ``FLAT_LIMIT`` values
        comes as ``(-1, plain table, nested table)`` instead. JSON null (also inside lists, as gopher-lua
        drops it) and ``managedFields`` are left out.
        The conversion is not charged to the script's memory budget: the limit is lifted while it runs (no
        allocation may fail inside a callback) and raised by what it used.
        """
        runtime, maps = self.runtime, self.maps
        limit = self.limit
        if limit:
            runtime.set_max_memory(0)
        before = runtime.get_memory_used()
        try:
            out: list[Any] = [0]
            source = maps[int(handle)]
            out[0] = self._map(source, out, inline=0 if handle else 1)
            if len(out) > FLAT_LIMIT:
                return self._large(source)
            return tuple(out)
        finally:
            if limit:
                self.limit = limit + runtime.get_memory_used() - before
                runtime.set_max_memory(self.limit)


    def _map(self, source: Mapping[str, Any], out: list[Any], inline: int = 0) -> int:
        """Append ``(key, tag, value)`` per entry of one map level; the number of entries appended.

        ``inline`` levels of nested maps are given inline (``3, n, triples…``) rather than as handles: the
        object's own top-level maps (metadata, spec, status) come with it, as nearly every script reads
        them, which saves a call back per map.
        """
        maps, count = self.maps, 0
        for key, item in source.items():
            kind = type(item)
            if kind in _SCALARS:
                out += (key, 0, item)
            elif kind is dict or isinstance(item, Mapping):
                if inline:
                    out += (key, 3, 0)
                    slot = len(out) - 1
                    out[slot] = self._map(item, out, inline - 1)
                else:
                    out += (key, 1, len(maps))
                    maps.append(item)
            elif (kind is list or kind is tuple) and key != "managedFields":
                out.append(key)
                self._list(item, out)
            else:
                continue
            count += 1
        return count

    def _list(self, items: Any, out: list[Any]) -> None:
        """Append ``2, n, (tag, value)…`` for a list; its maps inline (``3, n, triples…``): lists are short
        and read whole (ipairs over conditions). Null items are dropped, as gopher-lua does."""
        out += (2, 0)
        at, count = len(out) - 1, 0
        for item in items:
            kind = type(item)
            if kind in _SCALARS:
                out += (0, item)
            elif kind is dict or isinstance(item, Mapping):
                out += (3, 0)
                slot = len(out) - 1
                out[slot] = self._map(item, out)
            elif kind is list or kind is tuple:
                self._list(item, out)
            else:
                continue
            count += 1
        out[at] = count

    def _large(self, source: Mapping[str, Any]) -> tuple[Any, ...]:
        """A map too large to pass flat: ``(-1, plain entries, nested maps' handles)`` as two tables."""
        runtime, maps = self.runtime, self.maps
        plain: dict[str, Any] = {}
        nested: dict[str, int] = {}
        for key, item in source.items():
            if isinstance(item, Mapping):
                nested[key] = len(maps)
                maps.append(item)
            elif isinstance(item, list | tuple):
                if key != "managedFields":
                    plain[key] = runtime.table_from([i for i in item if i is not None], recursive=True)
            elif item is not None:
                plain[key] = item
        return (-1, runtime.table_from(plain), runtime.table_from(nested))


def _text(value: Any) -> str:
    """A message from Lua: a str, or (not ASCII) a Lua table of its bytes, decoded leniently."""
    if isinstance(value, str):
        return value
    try:
        return bytes(int(b) for b in value.values()).decode("utf-8", errors="replace")
    except (AttributeError, TypeError, ValueError):
        return str(value)


def _opaque(obj: object, name: object, setting: bool) -> object:
    """lupa's attribute filter: Lua code may not read or write any attribute of a Python object."""
    raise AttributeError("Python objects are opaque to health scripts")


class LuaHealthChecks:
    """Argo CD health scripts by kind; ``check`` runs the one for an object's kind.

    Args:
        scripts: every configured script, in the order their sources were configured.
        settings: the budgets of one call (instructions, memory, wall time).
    """

    def __init__(self, scripts: Iterable[HealthScript], settings: HealthSettings | None = None) -> None:
        self.settings = settings or HealthSettings()
        ordered = sorted(scripts, key=lambda s: s.tier)  # stable: configuration order within a tier
        self.scripts = tuple(ordered)
        self._exact: dict[str, HealthScript] = {}
        for script in ordered:
            if not script.wildcard:
                self._exact.setdefault(script.pattern, script)
        self._wildcards = sorted((s for s in ordered if s.wildcard), key=lambda s: (s.tier, -_specificity(s)))
        self._by_kind: dict[tuple[str, str], HealthScript | None] = {}
        self._module = _lua_module()
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.scripts)

    @property
    def lua_implementation(self) -> str:
        """The Lua runtime in use (``LuaJIT 2.1…`` or ``Lua 5.1``)."""
        return str(self._runtime().runtime.lua_implementation)

    def script_for(self, group: str, kind: str) -> HealthScript | None:
        """The script that judges ``group/kind``, or None."""
        cached = self._by_kind.get((group, kind), ...)
        if cached is not ...:
            return cached
        key = kind_key(group, kind)
        found = None
        for tier in (ARGOCD_CM, DIRECTORY):
            exact = self._exact.get(key)
            if exact is not None and exact.tier == tier:
                found = exact
                break
            found = next((s for s in self._wildcards if s.tier == tier and fnmatch.fnmatchcase(key, s.pattern)),
                         None)
            if found is not None:
                break
        self._by_kind[(group, kind)] = found
        return found

    def check(self, obj: Mapping[str, Any]) -> Health | None:
        """The verdict of the script for ``obj``'s kind, or None when no script covers it."""
        group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        script = self.script_for(group, str(obj.get("kind") or ""))
        if script is None:
            return None
        return self.run(script, obj)

    def run(self, script: HealthScript, obj: Mapping[str, Any]) -> Health:
        """Run ``script`` on ``obj`` (whatever its kind)."""
        source = f"script: {script.where}"
        try:
            outcome = self._runtime().call(script, obj)
        except Exception as exc:  # one object's odd shape must not stop the evaluation of the others
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        if outcome[0] == "error":
            return Health(HealthStatus.UNKNOWN, clean(FAILED + _text(outcome[1]), max_length=MESSAGE_LIMIT), source)
        if outcome[0] == "empty":
            return Health(HealthStatus.UNKNOWN, FAILED + "it returned nothing", source)
        status = _VALID.get(outcome[1]) if isinstance(outcome[1], str) else None
        if status is None:
            return Health(HealthStatus.UNKNOWN, "Lua returned an invalid health status", source)
        message = clean(_text(outcome[2]), max_length=MESSAGE_LIMIT) if outcome[2] else ""
        return Health(status, message, source)

    def _runtime(self) -> _Runtime:
        runtime: _Runtime | None = getattr(self._local, "runtime", None)
        if runtime is None:
            runtime = self._local.runtime = _Runtime(self._module, self.settings)
        return runtime
