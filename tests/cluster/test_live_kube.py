"""KubeClient against a real kube-apiserver: discovery, paginated lists, SSA apply and dry run, strict
validation, immutable fields, deletes with preconditions, reviews, and exec-plugin credentials."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.errors import ClusterError
from core.live.api import APIResource
from core.live.drift import DryRunVerdict, dry_run_apply
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig, ExecConfig, load_kubeconfig
from core.live.watching import paged_list
from devcluster import ClusterInfo

pytestmark = pytest.mark.cluster

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True,
                 verbs=frozenset({"list", "watch", "get", "patch", "create", "delete"}))
DEPLOY = APIResource(group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True)
FM = "fleetdeck"


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {"suite": "live"}}, "data": data}


def deployment(name: str, namespace: str, app: str) -> dict[str, Any]:
    labels = {"app": app}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "registry.invalid/app:1"}]}}}}


@pytest_asyncio.fixture
async def clients(cluster: ClusterInfo) -> AsyncIterator[Callable[..., KubeClient]]:
    """``make(viewer=False)`` → a KubeClient for the cluster's admin or viewer context, closed afterwards."""
    made: list[KubeClient] = []
    config = load_kubeconfig(cluster.kubeconfig)

    def make(*, viewer: bool = False) -> KubeClient:
        context = config.context(cluster.viewer_context if viewer else cluster.admin_context)
        client = KubeClient(cluster=cluster.name, context=context)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def admin(clients: Callable[..., KubeClient]) -> KubeClient:
    return clients()


@pytest.fixture
def viewer(clients: Callable[..., KubeClient]) -> KubeClient:
    return clients(viewer=True)


async def off_loop(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking devcluster helper without blocking the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


# ---------------------------------------------------------------------------------------------- reads


async def test_discover_serves_preferred_versions_without_subresources(admin: KubeClient) -> None:
    """Discovery (aggregated, two requests) finds core and group kinds, never ``pods/log``-style entries."""
    resources = await admin.discover()
    by_kind = {r.group_kind: r for r in resources}
    assert by_kind[("", "ConfigMap")].plural == "configmaps" and by_kind[("", "ConfigMap")].namespaced
    assert by_kind[("apps", "Deployment")].version == "v1"
    assert not by_kind[("", "Namespace")].namespaced
    assert by_kind[("apiextensions.k8s.io", "CustomResourceDefinition")].watchable
    assert all("/" not in r.plural for r in resources)
    assert len(by_kind) == len(resources), "one entry per kind"
    assert admin.counters["discover"] == 2


async def test_list_paginates(admin: KubeClient, cluster: ClusterInfo, namespace: str) -> None:
    """limit=2 over 5 ConfigMaps takes 3 pages with continue tokens; paged_list returns all 5."""
    for i in range(5):
        await admin.apply(CM, configmap(f"page-{i}", namespace, i=str(i)), field_manager=FM)
    selector = "suite=live"
    first = await admin.list(CM, label_selector=selector, limit=2)
    assert len(first["items"]) == 2 and first["metadata"]["continue"]
    assert first["items"][0]["kind"] == "ConfigMap" and first["items"][0]["apiVersion"] == "v1"
    before = admin.counters["list"]
    items, version = await paged_list(admin, CM, page_size=2, label_selector=selector)
    assert sorted(i["metadata"]["name"] for i in items) == [f"page-{i}" for i in range(5)]
    assert admin.counters["list"] - before == 3 and version.isdigit()


async def test_get_missing_object_is_none(admin: KubeClient, namespace: str) -> None:
    """get of a missing object returns None, not an error."""
    assert await admin.get(CM, "nothing-here", namespace) is None


# ---------------------------------------------------------------------------------------------- SSA


async def test_dry_run_apply_writes_nothing(admin: KubeClient, namespace: str) -> None:
    """A dry-run SSA returns the predicted object (owned by fleetdeck) and the object stays absent."""
    predicted = await admin.apply(CM, configmap("dry", namespace, a="1"), field_manager=FM, dry_run=True)
    assert predicted["data"] == {"a": "1"}
    assert [m["manager"] for m in predicted["metadata"]["managedFields"]] == [FM]
    assert await admin.get(CM, "dry", namespace) is None
    assert admin.counters["dry_run"] == 1 and admin.counters["apply"] == 0


async def test_apply_then_dry_run_predicts_the_change_only(admin: KubeClient, namespace: str) -> None:
    """SSA creates the object; a later dry run predicts the new data while live keeps the old."""
    live = await admin.apply(CM, configmap("real", namespace, a="1"), field_manager=FM)
    result = await dry_run_apply(admin, CM, {**configmap("real", namespace, a="2"),
                                             "metadata": {**live["metadata"]}}, field_manager=FM)
    assert result.verdict is DryRunVerdict.PREDICTED and result.predicted is not None
    assert result.predicted["data"] == {"a": "2"}
    again = await admin.get(CM, "real", namespace)
    assert again is not None and again["data"] == {"a": "1"}
    assert again["metadata"]["managedFields"], "live objects keep managedFields"


async def test_strict_field_validation_rejects_unknown_fields(admin: KubeClient, namespace: str) -> None:
    """An unknown field fails the dry run as Invalid (the 1.36 server answers 500; reported as 422)."""
    bad = {**configmap("typo", namespace, a="1"), "dataa": {"b": "2"}}
    result = await dry_run_apply(admin, CM, bad, field_manager=FM)
    assert result.verdict is DryRunVerdict.INVALID and not result.local_fallback
    assert "dataa" in result.message
    assert result.error is not None and isinstance(result.error, ClusterError)
    assert result.error.status == 422 and not result.error.transient


async def test_immutable_field_change_requires_replace(admin: KubeClient, namespace: str) -> None:
    """Changing a Deployment's selector is refused as immutable: the verdict is requires-replace."""
    await admin.apply(DEPLOY, deployment("web", namespace, "a"), field_manager=FM)
    result = await dry_run_apply(admin, DEPLOY, deployment("web", namespace, "b"), field_manager=FM)
    assert result.verdict is DryRunVerdict.REQUIRES_REPLACE, result.message
    assert "immutable" in result.message


async def test_missing_namespace_falls_back_locally(admin: KubeClient) -> None:
    """A dry run into a namespace that does not exist is a 404: compare locally."""
    result = await dry_run_apply(admin, CM, configmap("x", "no-such-namespace-here"), field_manager=FM)
    assert result.verdict is DryRunVerdict.KIND_MISSING and result.local_fallback


async def test_delete_honours_uid_precondition_and_tolerates_missing(admin: KubeClient, namespace: str) -> None:
    """A wrong UID precondition is a 409 conflict; the right one deletes; deleting again is fine."""
    live = await admin.apply(CM, configmap("doomed", namespace), field_manager=FM)
    with pytest.raises(ClusterError) as caught:
        await admin.delete(CM, "doomed", namespace, uid="00000000-0000-0000-0000-000000000000")
    assert caught.value.conflict
    await admin.delete(CM, "doomed", namespace, uid=live["metadata"]["uid"], propagation="Background")
    assert await admin.get(CM, "doomed", namespace) is None
    await admin.delete(CM, "doomed", namespace)


async def test_create_with_dry_run_and_for_real(admin: KubeClient, namespace: str) -> None:
    """create(dry_run=True) stores nothing; create() stores; a second create is a 409."""
    await admin.create(CM, configmap("made", namespace), dry_run=True)
    assert await admin.get(CM, "made", namespace) is None
    created = await admin.create(CM, configmap("made", namespace))
    assert created["metadata"]["uid"]
    with pytest.raises(ClusterError) as caught:
        await admin.create(CM, configmap("made", namespace))
    assert caught.value.status == 409 and caught.value.reason == "AlreadyExists"


# ---------------------------------------------------------------------------------------------- reviews


async def test_can_i_and_whoami_for_admin_and_viewer(admin: KubeClient, viewer: KubeClient, namespace: str) -> None:
    """SelfSubjectAccessReview: admin may write, the viewer only read (no Secrets); names via whoami."""
    secrets = APIResource(group="", version="v1", kind="Secret", plural="secrets", namespaced=True)
    pod_exec = APIResource(group="", version="v1", kind="Pod", plural="pods/exec", namespaced=True)
    assert await admin.whoami() == "fleetdeck-admin"
    assert await viewer.whoami() == "fleetdeck-viewer"
    assert await admin.can_i("create", CM, namespace)
    assert await admin.can_i("patch", DEPLOY, namespace)
    assert await viewer.can_i("list", CM, namespace)
    assert await viewer.can_i("watch", DEPLOY)
    assert not await viewer.can_i("create", CM, namespace)
    assert not await viewer.can_i("patch", DEPLOY, namespace)
    assert not await viewer.can_i("delete", CM, namespace)
    assert not await viewer.can_i("get", secrets, namespace)
    assert not await viewer.can_i("create", pod_exec, namespace)
    assert viewer.counters["review"] == 8 and viewer.counters["create"] == 0


async def test_viewer_write_is_forbidden_by_the_server(viewer: KubeClient, namespace: str) -> None:
    """Without the guard, the server itself refuses the viewer's dry run with 403: local fallback."""
    result = await dry_run_apply(viewer, CM, configmap("nope", namespace), field_manager=FM)
    assert result.verdict is DryRunVerdict.FORBIDDEN and result.local_fallback
    assert result.condition == "DryRunForbidden"


# ---------------------------------------------------------------------------------------------- credentials


EXEC_CERT_PLUGIN = textwrap.dedent('''
    import json, os, sys
    cert = open(os.environ["CERT"]).read()
    key = open(os.environ["KEY"]).read()
    print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                      "status": {"clientCertificateData": cert, "clientKeyData": key}}))
''')


async def test_exec_plugin_client_certificate_authenticates(cluster: ClusterInfo, tmp_path: Path) -> None:
    """An exec plugin that returns a client certificate logs in as that identity (the viewer here)."""
    script = tmp_path / "cert-plugin.py"
    script.write_text(EXEC_CERT_PLUGIN)
    rest = cluster.rest("viewer")
    base = load_kubeconfig(cluster.kubeconfig).context(cluster.admin_context)
    context = ContextConfig(
        name="exec-viewer", server=base.server, ca_data=base.ca_data,
        exec=ExecConfig(command=sys.executable, args=(str(script),),
                        env=(("CERT", str(rest.client_cert)), ("KEY", str(rest.client_key)))),
    )
    client = KubeClient(cluster=cluster.name, context=context)
    try:
        assert await client.whoami() == "fleetdeck-viewer"
        assert client.credentials.exec_runs == 1
    finally:
        await client.close()


async def test_unreachable_server_is_a_transient_error(cluster: ClusterInfo) -> None:
    """Connection refused is a ClusterError with status None (transient), quickly."""
    base = load_kubeconfig(cluster.kubeconfig).context(cluster.admin_context)
    closed = ContextConfig(name="dead", server="https://127.0.0.1:1", ca_data=base.ca_data,
                           client_cert=base.client_cert, client_key=base.client_key)
    client = KubeClient(cluster="dead", context=closed)
    try:
        with pytest.raises(ClusterError) as caught:
            await asyncio.wait_for(client.discover(), timeout=10)
        assert caught.value.status is None and caught.value.transient
        assert "cluster dead" in str(caught.value)
    finally:
        await client.close()



async def test_a_burst_of_requests_is_held_to_the_client_side_rate(cluster: ClusterInfo, namespace: str) -> None:
    """12 reads sent at once with a limit of 1 request/s and bursts of 10: all answer; the first 10 go at
    once and 2 wait their turn (fault K8: fleetdeck cannot flood an API server, whatever asks)."""
    from core.settings import WatchSettings

    context = load_kubeconfig(cluster.kubeconfig).context(cluster.admin_context)
    client = KubeClient(cluster=cluster.name, context=context, settings=WatchSettings(qps=1, burst=10))
    try:
        pages = await asyncio.gather(*(client.list(CM, limit=1) for _ in range(12)))
        assert all("items" in page for page in pages)
        assert client.rate_limit is not None and client.rate_limit.waits == 2
    finally:
        await client.close()
