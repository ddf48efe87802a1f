"""ReplicaSet / ReplicationController controller: one sync against filled caches."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from k8py.controllers.replicaset import ReplicaSetController
from k8py.controllers.replicationcontroller import ReplicationControllerController
from tests.controllers.fakeapi import FakeClient, make_context, pod, put


class Client(FakeClient):
    """FakeClient plus patch, and GETs answered from ``objects``."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict] = {}

    async def patch(self, r: Any, name: str, patch: Any, namespace: str | None = None, **kw: Any) -> dict:
        self.calls.append(("patch", r.plural, patch))
        md = dict(patch["metadata"], name=name, namespace=namespace, resourceVersion="99")
        return {"metadata": md}

    async def get(self, r: Any, name: str, namespace: str | None = None, **_: Any) -> dict:
        return copy.deepcopy(self.objects[name])


def setup(cls: type = ReplicaSetController):
    ctx, _ = make_context()
    client = Client()
    ctx.client = client  # type: ignore[assignment]
    c = cls(ctx)
    return ctx, client, c


def replicaset(name: str = "web", replicas: int = 3, **spec: Any) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 2,
                         "resourceVersion": "5"},
            "spec": dict({"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}},
                                       "spec": {"containers": [{"name": "c", "image": "x"}]}}}, **spec),
            "status": {"replicas": 0}}


OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "uid-web"}


def run(c, key: str = "default/web") -> None:
    asyncio.run(c.sync(key))


def test_creates_missing_pods_in_slow_start_batches_and_writes_status():
    ctx, client, c = setup()
    put(ctx, "replicasets.apps", replicaset(replicas=3))
    run(c)
    creates = [o for v, _, o in client.calls if v == "create"]
    assert len(creates) == 3
    p = creates[0]
    assert p["metadata"]["generateName"] == "web-" and p["metadata"]["labels"] == {"app": "web"}
    assert p["metadata"]["ownerReferences"] == [dict(OWNER, controller=True, blockOwnerDeletion=True)]
    events = ctx._recorders.events
    assert sum(1 for e in events if e[1] == "SuccessfulCreate" and e[2].startswith("Created pod: web-")) == 3
    st = [o for v, _, o in client.calls if v == "update/status"][-1]["status"]
    assert st == {"replicas": 0, "observedGeneration": 2}
    # expectations: the cache has not shown the pods yet, so a second sync creates nothing
    client.calls.clear()
    run(c)
    assert not [1 for v, *_ in client.calls if v == "create"]
    # the informer shows them: status counts them
    put(ctx, "pods", *(pod(f"web-{i}", owner=OWNER) for i in range(3)))
    run(c)
    st = [o for v, _, o in client.calls if v == "update/status"][-1]["status"]
    assert st == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                  "observedGeneration": 2}


def test_burst_is_capped_per_sync():
    ctx, client, c = setup()
    put(ctx, "replicasets.apps", replicaset(replicas=1200))
    run(c)
    assert sum(1 for v, *_ in client.calls if v == "create") == 500


def test_scale_down_deletes_the_pods_kube_ranks_first():
    ctx, client, c = setup()
    put(ctx, "replicasets.apps", replicaset(replicas=1))
    put(ctx, "pods", pod("running", owner=OWNER), pod("pending", owner=OWNER, phase="Pending", ready=False),
        pod("unassigned", owner=OWNER, node="", phase="Pending", ready=False))
    run(c)
    deleted = sorted(o for v, _, o in client.calls if v == "delete")
    assert deleted == ["default/pending", "default/unassigned"]
    assert ("Normal", "SuccessfulDelete", "Deleted pod: pending") in ctx._recorders.events


def test_adopts_matching_orphan_and_releases_non_matching_child():
    ctx, client, c = setup()
    rs = replicaset(replicas=2)
    client.objects["web"] = rs
    put(ctx, "replicasets.apps", rs)
    put(ctx, "pods", pod("orphan"), pod("stray", owner=OWNER, labels={"app": "other"}),
        pod("unrelated", labels={"app": "other"}))
    run(c)
    patches = [o for v, _, o in client.calls if v == "patch"]
    adopt = next(p for p in patches if p["metadata"]["uid"] == "uid-orphan")
    assert adopt["metadata"]["ownerReferences"][0]["uid"] == "uid-web"
    release = next(p for p in patches if p["metadata"]["uid"] == "uid-stray")
    assert release["metadata"]["ownerReferences"] == [{"$patch": "delete", "uid": "uid-web"}]
    assert not any(p["metadata"]["uid"] == "uid-unrelated" for p in patches)
    assert sum(1 for v, *_ in client.calls if v == "create") == 1  # 2 wanted, the orphan is one


def test_failed_create_sets_replica_failure():
    from k8py.client.rest import APIError
    ctx, client, c = setup()
    client.fail["create"] = APIError(403, {"reason": "Forbidden", "message": 'pods "x" is forbidden: quota'})
    put(ctx, "replicasets.apps", replicaset(replicas=2))
    try:
        run(c)
    except APIError:
        pass
    else:
        raise AssertionError("sync should fail")
    st = [o for v, _, o in client.calls if v == "update/status"][-1]["status"]
    cond = st["conditions"][0]
    assert (cond["type"], cond["reason"], cond["message"]) == ("ReplicaFailure", "FailedCreate",
                                                                'pods "x" is forbidden: quota')
    assert ("Warning", "FailedCreate", 'Error creating: pods "x" is forbidden: quota') in ctx._recorders.events


def test_replication_controller_uses_a_plain_selector():
    ctx, client, c = setup(ReplicationControllerController)
    rc = {"apiVersion": "v1", "kind": "ReplicationController",
          "metadata": {"name": "web", "namespace": "default", "uid": "uid-web", "generation": 1},
          "spec": {"replicas": 2, "selector": {"app": "web"},
                   "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}}
    put(ctx, "replicationcontrollers", rc)
    run(c)
    creates = [o for v, _, o in client.calls if v == "create"]
    assert len(creates) == 2
    assert creates[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    assert creates[0]["metadata"]["ownerReferences"][0]["apiVersion"] == "v1"
