"""Row B10 at scale: ``KUBECONFIG=a:b:c`` with 100 contexts over three files, one of them broken. Every
context of the readable files resolves (first file wins on a shared name, as kubectl merges), the broken
file's error names it, insecure contexts are flagged, and loading plus resolving all of them is quick."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConfigError
from core.live.kubeconfig import load_kubeconfig

CONTEXTS = 100


def stanza(i: int, server: str) -> dict[str, Any]:
    """Cluster, user and context ``c<i>`` (every tenth skips TLS verification)."""
    cluster: dict[str, Any] = {"server": server}
    if i % 10 == 0:
        cluster["insecure-skip-tls-verify"] = True
    return {"clusters": [{"name": f"c{i}", "cluster": cluster}],
            "users": [{"name": f"u{i}", "user": {"token": f"t{i}"}}],
            "contexts": [{"name": f"c{i}", "context": {"cluster": f"c{i}", "user": f"u{i}", "namespace": f"ns{i}"}}]}


def write(path: Path, indices: range, host: str) -> Path:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for i in indices:
        for section, items in stanza(i, f"https://{host}:{6443 + i}").items():
            doc[section].extend(items)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_hundred_contexts_over_three_files_with_one_broken(tmp_path: Path) -> None:
    first = write(tmp_path / "first.yaml", range(0, 60), "first.example")
    second = write(tmp_path / "second.yaml", range(50, CONTEXTS), "second.example")  # 50..59 shadowed
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\ncontexts:\n  - name: lost\n   context: {cluster: [unclosed\n")
    environ = {"KUBECONFIG": os.pathsep.join(str(p) for p in (first, broken, second))}

    started = time.perf_counter()
    config = load_kubeconfig(environ=environ)
    contexts = {name: config.context(name) for name in config.context_names()}
    elapsed = time.perf_counter() - started

    assert len(contexts) == CONTEXTS
    assert contexts["c55"].server == "https://first.example:6498", "the first file wins on a shared name"
    assert contexts["c75"].server == "https://second.example:6518"
    assert contexts["c75"].namespace == "ns75" and contexts["c75"].token == "t75"
    assert {n for n, c in contexts.items() if c.insecure} == {f"c{i}" for i in range(0, CONTEXTS, 10)}
    assert len(config.errors) == 1 and config.errors[0].path == str(broken) and config.errors[0].line == 4
    with pytest.raises(ConfigError) as caught:
        config.context("lost")
    assert "broken.yaml" in str(caught.value) or "broken.yaml" in caught.value.hint
    assert elapsed < 2.0, f"{elapsed:.2f}s"
    print(f"\nB10: {CONTEXTS} contexts over 3 files loaded and resolved in {elapsed * 1000:.0f} ms")
