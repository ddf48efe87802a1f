"""The garbage collector's graph and its decisions, against an in-memory API."""

from __future__ import annotations

import asyncio

from k8py.controllers.garbagecollector import GarbageCollector, monitored_resources
from k8py.controllers.gcgraph import FOREGROUND, Graph, Identity, _diff, parse_refs
from tests.controllers.memapi import FakeAPI, cm, drain, make_context


def run(coro):
    return asyncio.run(coro)


def setup() -> tuple[FakeAPI, GarbageCollector]:
    api = FakeAPI()
    return api, GarbageCollector(make_context(api))


def deletes(api: FakeAPI) -> list[tuple]:
    return [c for c in api.calls if c[0] == "delete"]


# ---- the graph -------------------------------------------------------------

class Queues:
    def __init__(self) -> None:
        self.delete: list[str] = []
        self.orphan: list[str] = []


def graph() -> tuple[Graph, Queues]:
    q = Queues()
    return Graph(q.delete.append, q.orphan.append), q


def test_dependent_before_owner_makes_a_virtual_owner_then_observes_it():
    g, q = graph()
    owner = cm("o")
    g.on_upsert(None, cm("d", owner), "v1", "ConfigMap")
    v = g.nodes["uid-o"]
    assert v.virtual and v.identity == Identity("v1", "ConfigMap", "default", "o", "uid-o")
    assert q.delete == ["uid-o"]  # the collector checks whether it exists
    g.on_upsert(None, owner, "v1", "ConfigMap")
    assert not g.nodes["uid-o"].virtual and [d.uid for d in g.nodes["uid-o"].deps()] == ["uid-d"]
    assert q.delete == ["uid-o"]


def test_graph_keeps_no_objects_only_coordinates():
    g, _ = graph()
    g.on_upsert(None, dict(cm("o"), data={"big": "x" * 1000}), "v1", "ConfigMap")
    n = g.nodes["uid-o"]
    assert not hasattr(n, "__dict__")
    assert n.identity == ("v1", "ConfigMap", "default", "o", "uid-o") and n.owners == ()


def test_owner_removal_enqueues_dependents_and_remembers_absence():
    g, q = graph()
    owner = cm("o")
    g.on_upsert(None, owner, "v1", "ConfigMap")
    g.on_upsert(None, cm("a", owner), "v1", "ConfigMap")
    g.on_upsert(None, cm("b", owner), "v1", "ConfigMap")
    g.on_delete(owner, "v1", "ConfigMap")
    assert "uid-o" not in g.nodes and sorted(q.delete) == ["uid-a", "uid-b"]
    assert g.absent.has(Identity("v1", "ConfigMap", "default", "o", "uid-o"))


def test_owner_reference_changes_move_the_dependent():
    g, q = graph()
    a, b = cm("a"), cm("b")
    for o in (a, b):
        g.on_upsert(None, o, "v1", "ConfigMap")
    d1 = cm("d", a, block=True)
    g.on_upsert(None, d1, "v1", "ConfigMap")
    d2 = cm("d", b)
    g.on_upsert(d1, d2, "v1", "ConfigMap")
    assert not g.nodes["uid-a"].deps() and [d.uid for d in g.nodes["uid-b"].deps()] == ["uid-d"]
    assert q.delete == ["uid-a"]  # a blocking reference went away: its owner may finish now


def test_diff_of_owner_references():
    old = parse_refs({"ownerReferences": [{"uid": "1", "kind": "A", "name": "a", "apiVersion": "v1",
                                           "blockOwnerDeletion": True},
                                          {"uid": "2", "kind": "B", "name": "b", "apiVersion": "v1"}]})
    new = parse_refs({"ownerReferences": [{"uid": "1", "kind": "A", "name": "a", "apiVersion": "v1"},
                                          {"uid": "3", "kind": "C", "name": "c", "apiVersion": "v1"}]})
    added, removed, changed = _diff(old, new)
    assert [r.uid for r in added] == ["3"] and [r.uid for r in removed] == ["2"]
    assert [(o.block, n.block) for o, n in changed] == [(True, False)]


def test_deletion_transitions():
    g, q = graph()
    owner = cm("o")
    g.on_upsert(None, owner, "v1", "ConfigMap")
    g.on_upsert(None, cm("d", owner), "v1", "ConfigMap")
    fg = cm("o", finalizers=[FOREGROUND], deleting=True)
    g.on_upsert(owner, fg, "v1", "ConfigMap")
    assert g.nodes["uid-o"].deleting_dependents and q.delete == ["uid-d", "uid-o"]
    g.on_upsert(fg, fg, "v1", "ConfigMap")  # no new transition
    assert q.delete == ["uid-d", "uid-o"]
    g2, q2 = graph()
    g2.on_upsert(None, cm("p", finalizers=["orphan"], deleting=True), "v1", "ConfigMap")  # seen at startup
    assert q2.orphan == ["uid-p"]


def test_hot_path_ignores_updates_that_change_nothing_it_keeps():
    g, q = graph()
    a = cm("a")
    g.on_upsert(None, a, "v1", "ConfigMap")
    node = g.nodes["uid-a"]
    g.on_upsert(a, dict(a, data={"x": "y"}), "v1", "ConfigMap")
    assert g.nodes["uid-a"] is node and q.delete == []


def test_invalid_namespace_owner_is_reported():
    seen = []
    q = Queues()
    g = Graph(q.delete.append, q.orphan.append, report_invalid_namespace=lambda n, r: seen.append((n.uid, r.uid)))
    owner = cm("o", ns="other")
    g.on_upsert(None, owner, "v1", "ConfigMap")
    g.on_upsert(None, cm("d", owner), "v1", "ConfigMap")
    assert seen == [("uid-d", "uid-o")] and "uid-d" in q.delete


def test_monitored_resources_skip_events_and_keep_one_version():
    names = [(r.group, r.plural) for r in monitored_resources()]
    assert ("", "events") not in names and ("events.k8s.io", "events") not in names
    assert names.count(("autoscaling", "horizontalpodautoscalers")) == 1
    assert ("", "pods") in names and ("apps", "replicasets") in names and ("", "namespaces") in names


# ---- the collector against an in-memory API -------------------------------

def test_background_deletes_dependents_of_a_deleted_owner():
    api, gc = setup()
    owner = api.add("configmaps", cm("o"))
    api.add("configmaps", cm("a", owner))
    api.add("configmaps", cm("b", owner, finalizers=["orphan"]))
    run(drain(gc))
    assert deletes(api) == []
    del api.objects[("configmaps", "default", "o")]
    api._emit(gc.kinds[("", "ConfigMap")], None, owner)
    run(drain(gc))
    # a dependent's own orphan finalizer is honoured; the owner's removal was seen, so it is
    # remembered absent and never fetched
    assert sorted(deletes(api)) == [("delete", "configmaps", "default", "a", "Background"),
                                    ("delete", "configmaps", "default", "b", "Orphan")]
    assert ("get", "configmaps", "default", "o") not in api.calls
    assert not api.objects


def test_dependent_of_a_missing_owner_is_deleted_at_once():
    api, gc = setup()
    ghost = cm("ghost")
    api.add("configmaps", cm("d", ghost))
    run(drain(gc))
    assert deletes(api) == [("delete", "configmaps", "default", "d", "Background")]
    assert "uid-ghost" not in gc.graph.nodes  # the virtual owner is gone from the graph


def test_owner_with_the_same_name_but_another_uid_does_not_count():
    api, gc = setup()
    api.add("configmaps", cm("o"))
    impostor = dict(cm("o"), metadata={"name": "o", "namespace": "default", "uid": "uid-other"})
    api.add("configmaps", cm("d", impostor))
    run(drain(gc))
    assert deletes(api) == [("delete", "configmaps", "default", "d", "Background")]


def test_solid_owner_keeps_the_dependent_but_loses_dangling_references():
    api, gc = setup()
    a = api.add("configmaps", cm("a"))
    api.add("configmaps", cm("d", a, cm("gone")))
    run(drain(gc))
    assert deletes(api) == []
    refs = api.obj("configmaps", "default", "d")["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["a"]


def test_orphan_removes_references_then_the_finalizer():
    api, gc = setup()
    owner = api.add("configmaps", cm("o"))
    api.add("configmaps", cm("a", owner))
    api.add("configmaps", cm("b", owner, cm("other")))
    api.add("configmaps", cm("other"))
    run(drain(gc))
    run(api.delete(gc.kinds[("", "ConfigMap")], "o", "default", propagation="Orphan"))
    run(drain(gc))
    assert api.obj("configmaps", "default", "o") is None
    assert "ownerReferences" not in api.obj("configmaps", "default", "a")["metadata"]
    assert [r["name"] for r in api.obj("configmaps", "default", "b")["metadata"]["ownerReferences"]] == ["other"]
    assert deletes(api) == [("delete", "configmaps", "default", "o", "Orphan")]


def test_foreground_waits_for_blocking_dependents():
    api, gc = setup()
    owner = api.add("configmaps", cm("o"))
    api.add("configmaps", cm("free", owner))
    api.add("configmaps", cm("held", owner, block=True, finalizers=["example.com/hold"]))
    run(drain(gc))
    run(api.delete(gc.kinds[("", "ConfigMap")], "o", "default", propagation="Foreground"))
    run(drain(gc))
    assert api.obj("configmaps", "default", "free") is None
    held = api.obj("configmaps", "default", "held")
    assert held["metadata"].get("deletionTimestamp")
    assert api.obj("configmaps", "default", "o")["metadata"]["finalizers"] == [FOREGROUND]
    # the blocking dependent goes: the owner's finalizer is removed and it goes too
    run(api.patch(gc.kinds[("", "ConfigMap")], "held", {"metadata": {"finalizers": None}}, "default"))
    run(drain(gc))
    assert api.obj("configmaps", "default", "held") is None and api.obj("configmaps", "default", "o") is None


def test_foreground_propagates_to_dependents_that_have_dependents():
    api, gc = setup()
    top = api.add("configmaps", cm("top"))
    mid = api.add("configmaps", cm("mid", top, block=True))
    api.add("configmaps", cm("leaf", mid, block=True, finalizers=["example.com/hold"]))
    run(drain(gc))
    run(api.delete(gc.kinds[("", "ConfigMap")], "top", "default", propagation="Foreground"))
    run(drain(gc))
    assert ("delete", "configmaps", "default", "mid", "Foreground") in deletes(api)
    assert api.obj("configmaps", "default", "mid")["metadata"]["finalizers"] == [FOREGROUND]
    assert api.obj("configmaps", "default", "top") is not None
    run(api.patch(gc.kinds[("", "ConfigMap")], "leaf", {"metadata": {"finalizers": None}}, "default"))
    run(drain(gc))
    assert not api.objects


def test_stale_cache_conflict_deletes_when_owners_are_unchanged():
    api, gc = setup()
    api.add("configmaps", cm("d", cm("ghost")), notify=False)
    stale = dict(api.obj("configmaps", "default", "d"))
    stale["metadata"] = dict(stale["metadata"], resourceVersion="1")
    api._emit(gc.kinds[("", "ConfigMap")], stale)
    run(drain(gc))
    dels = deletes(api)
    assert len(dels) == 2 and api.obj("configmaps", "default", "d") is None  # retried without the rv
