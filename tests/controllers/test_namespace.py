"""Namespace, serviceaccount and root-ca-cert-publisher controllers, against
an in-memory API."""

from __future__ import annotations

import asyncio

from k8py.controllers.namespace import NamespaceController, ResourcesRemaining, content_conditions
from k8py.controllers.rootcacertpublisher import DESCRIPTION, RootCACertPublisher
from k8py.controllers.serviceaccount import ServiceAccountController
from tests.controllers.memapi import FakeAPI, cm, make_context


def run(coro):
    return asyncio.run(coro)


def namespace(name: str, deleting: bool = False) -> dict:
    md = {"name": name, "uid": f"uid-ns-{name}"}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Terminating" if deleting else "Active"}}


def conditions(api: FakeAPI, name: str) -> dict:
    ns = api.obj("namespaces", "", name)
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in ns["status"].get("conditions", [])}


def test_empty_terminating_namespace_is_finalized():
    api = FakeAPI()
    c = NamespaceController(make_context(api))

    async def body() -> None:
        api.add("namespaces", namespace("gone", deleting=True))
        assert c.queue._due  # looked at after a short delay
        api.add("configmaps", cm("a", ns="gone"))
        api.add("pods", {"metadata": {"name": "p", "namespace": "gone", "uid": "uid-p"}, "spec": {}})
        api.add("configmaps", cm("elsewhere", ns="kept"))
        await c.sync("gone")
    run(body())
    assert api.obj("namespaces", "", "gone") is None  # finalize removed it
    assert api.obj("configmaps", "kept", "elsewhere") is not None
    assert not [k for k in api.objects if k[1] == "gone"]
    colls = [x for x in api.calls if x[0] == "deletecollection"]
    assert ("deletecollection", "configmaps", "gone", "Background") in colls
    assert not [x for x in colls if x[2] != "gone"]
    assert [x for x in api.calls if x[0].startswith("update")][-1] == ("update/finalize", "namespaces", "", "gone")


def test_active_namespace_is_left_alone():
    api = FakeAPI()
    c = NamespaceController(make_context(api))
    api.add("namespaces", namespace("live"))
    api.add("configmaps", cm("a", ns="live"))
    run(c.sync("live"))
    assert api.obj("configmaps", "live", "a") is not None
    assert [x[0] for x in api.calls] == ["get"]


def test_finalizers_remaining_are_reported_and_waited_for():
    api = FakeAPI()
    c = NamespaceController(make_context(api))
    api.add("namespaces", namespace("held"))
    api.add("configmaps", cm("h", ns="held", finalizers=["example.com/hold"]))
    api.objects[("namespaces", "", "held")] = namespace("held", deleting=True)  # unseen by the informer
    api.objects[("namespaces", "", "held")]["metadata"]["resourceVersion"] = "7"
    try:
        run(c.delete("held"))
        raise AssertionError("expected ResourcesRemaining")
    except ResourcesRemaining as e:
        assert e.estimate == 15
    conds = conditions(api, "held")
    assert conds["NamespaceContentRemaining"] == (
        "True", "SomeResourcesRemain", "Some resources are remaining: configmaps. has 1 resource instances")
    assert conds["NamespaceFinalizersRemaining"] == (
        "True", "SomeFinalizerRemain", "Some finalizers are remaining: example.com/hold in 1 resource instances")
    assert conds["NamespaceDeletionContentFailure"][0] == "False"
    # nothing changed: a second pass does not write the status again
    before = len([x for x in api.calls if x[0] == "update/status"])
    try:
        run(c.delete("held"))
    except ResourcesRemaining:
        pass
    assert len([x for x in api.calls if x[0] == "update/status"]) == before


def test_content_conditions_messages_are_kubes():
    out = content_conditions({"pods.": 2, "deployments.apps": 1}, {"a/b": 1}, ["boom", "alpha"])
    assert out["NamespaceContentRemaining"][2] == (
        "Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances")
    assert out["NamespaceDeletionContentFailure"] == (
        "True", "ContentDeletionFailed", "Failed to delete all resource types, 2 remaining: alpha, boom")


def test_default_serviceaccount_in_active_namespaces_only():
    api = FakeAPI()
    c = ServiceAccountController(make_context(api))
    api.add("namespaces", namespace("a"))
    api.add("namespaces", namespace("t", deleting=True))
    run(c.sync("a"))
    run(c.sync("t"))
    assert [x for x in api.calls if x[0] == "create"] == [("create", "serviceaccounts", "a", "default")]
    run(c.sync("a"))  # there already: no write
    assert len([x for x in api.calls if x[0] == "create"]) == 1
    assert list(c.queue._queue) == ["a", "t"]  # namespace events enqueued them


def test_root_ca_published_and_restored():
    api = FakeAPI()
    ctx = make_context(api)

    class Cfg:
        ca_data = b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n"
    api.cfg = Cfg()  # type: ignore[attr-defined]
    c = RootCACertPublisher(ctx)
    api.add("namespaces", namespace("a"))
    run(c.sync("a"))
    got = api.obj("configmaps", "a", "kube-root-ca.crt")
    assert got["data"] == {"ca.crt": Cfg.ca_data.decode()}
    assert got["metadata"]["annotations"] == {"kubernetes.io/description": DESCRIPTION}
    run(c.sync("a"))
    assert len([x for x in api.calls if x[0] in ("create", "update")]) == 1
    tampered = dict(got, data={"ca.crt": "nope"})
    api.add("configmaps", tampered)
    run(c.sync("a"))
    assert api.obj("configmaps", "a", "kube-root-ca.crt")["data"] == {"ca.crt": Cfg.ca_data.decode()}
