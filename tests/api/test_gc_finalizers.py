"""Which garbage-collection finalizers a DELETE puts on an object (kube's
deletionFinalizersForGarbageCollection)."""

from __future__ import annotations

from k8py.apiserver.strategy import gc_finalizers
from k8py.client.rest import resource

CM, RC = resource("configmaps"), resource("replicationcontrollers")


def test_explicit_policies():
    assert gc_finalizers(CM, [], "Orphan") == ["orphan"]
    assert gc_finalizers(CM, [], "Foreground") == ["foregroundDeletion"]
    assert gc_finalizers(CM, ["a"], "Background") == ["a"]
    # a new policy replaces the other GC finalizer and keeps the rest in order
    assert gc_finalizers(CM, ["a", "orphan", "b"], "Foreground") == ["a", "b", "foregroundDeletion"]
    assert gc_finalizers(CM, ["foregroundDeletion", "a"], "Background") == ["a"]
    assert gc_finalizers(CM, ["a", "orphan"], "Orphan") == ["a", "orphan"]


def test_no_policy_keeps_what_is_there_else_the_kind_default():
    assert gc_finalizers(CM, [], None) == []
    assert gc_finalizers(CM, ["orphan"], None) == ["orphan"]
    assert gc_finalizers(CM, ["foregroundDeletion"], None) == ["foregroundDeletion"]
    # core/v1 ReplicationControllers orphan by default, as kube's do
    assert gc_finalizers(RC, [], None) == ["orphan"]
    assert gc_finalizers(RC, ["foregroundDeletion"], None) == ["foregroundDeletion"]
    assert gc_finalizers(RC, [], "Background") == []
