"""Machine-readable output carries untrusted strings as data, never as terminal controls.

A label value from a cluster holding a bidi override (U+202E), a C1 CSI (U+009B) or an ESC sequence is
printed by ``-o json`` and ``-o yaml`` as an escape that parses back to the same string, so the bytes on
the terminal are inert and a script reading the output loses nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tui.output import dump

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))
EVIL = "x\u202eevil\u2066\x9b31m\x1b]0;title\x07\x1b[2J → ok"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_dump_escapes_and_round_trips(fmt: str) -> None:
    data = {"message": EVIL, "plain": "→ stays readable"}
    text = dump(data, fmt)
    assert not RAW.search(text)
    assert (json.loads(text) if fmt == "json" else yaml.safe_load(text)) == data


def test_clean_data_keeps_unicode_readable() -> None:
    assert "→" in dump({"a": "→"}, "yaml") and "→" in dump({"a": "→"}, "json")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_drift_output_of_a_hostile_label_is_inert(tmp_path: Path, fmt: str) -> None:
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}}
    live = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default", "labels": {"a": EVIL}}}
    (tmp_path / "desired.yaml").write_text(yaml.safe_dump(desired))
    (tmp_path / "live.json").write_text(json.dumps(live))
    result = subprocess.run([FLEETDECK, "drift", str(tmp_path / "desired.yaml"), str(tmp_path / "live.json"),
                             "-o", fmt], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert not RAW.search(result.stdout)
    report = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert [c["live"] for c in report["changes"]] == [EVIL]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_events_output_of_a_hostile_event_is_inert(fmt: str) -> None:
    """`fleetdeck events -o json|yaml`: reason, message and object names from the cluster are data,
    escaped, and read back unchanged; the table cleans every cell."""
    from core.model import AppEvents, AppName, ClusterName, EventRecord, ResourceKey
    from tui.output import EVENT_HEADERS, event_record, event_rows, table

    line = EventRecord(type="Warning", reason=f"Back{EVIL}", message=EVIL, object=ResourceKey("", "Pod", "web", EVIL),
                       count=3, first_seen=1.0, last_seen=2.0, source=EVIL)
    found = AppEvents(app=AppName("web"), cluster=ClusterName("dev"), events=(line,), listed=True)
    text = dump({"app": "web", "targets": [event_record(found)]}, fmt)
    assert not RAW.search(text)
    data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    event = data["targets"][0]["events"][0]
    assert (event["message"], event["reason"], event["name"], event["count"]) == (EVIL, f"Back{EVIL}", EVIL, 3)
    shown = table(EVENT_HEADERS, event_rows([found], now=10.0))
    assert not RAW.search(shown) and "evil" in shown and "→ ok" in shown
