"""The garbage collector's dependency graph, as kube's GraphBuilder keeps it.

Every object of every monitored kind is a :class:`Node` keyed by uid,
holding only its coordinates, its owners (from ``metadata.ownerReferences``)
and the set of its dependents -- never the object itself, so the graph costs
a few hundred bytes per object even at 10,000 pods.

An owner named by a dependent but not (yet) seen by an informer becomes a
*virtual* node; the collector checks it against the API server and, when it
is truly absent, sends a *virtual delete* here, which removes it and puts its
dependents up for deletion.

The graph decides nothing by itself: it calls back ``attempt_delete(uid)``
and ``attempt_orphan(uid)`` (the collector's two work queues), exactly where
kube's GraphBuilder enqueues to attemptToDelete and attemptToOrphan.  It is
updated synchronously from informer handlers, on the one event loop, so it
needs no lock."""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

Obj = dict[str, Any]


class Identity(NamedTuple):
    """Where an object is: kube's ``objectReference`` (owner coordinates plus namespace)."""
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return (f"[{self.api_version}/{self.kind}, namespace: {self.namespace}, name: {self.name}, "
                f"uid: {self.uid}]")


@dataclass(frozen=True, slots=True)
class Ref:
    """One ownerReference."""
    uid: str
    api_version: str
    kind: str
    name: str
    block: bool = False  # blockOwnerDeletion
    controller: bool = False

    def identity(self, namespace: str) -> Identity:
        return Identity(self.api_version, self.kind, namespace, self.name, self.uid)


def parse_refs(md: dict[str, Any]) -> tuple[Ref, ...]:
    refs = md.get("ownerReferences")
    if not refs:
        return ()
    return tuple(Ref(r.get("uid", ""), sys.intern(r.get("apiVersion", "")), sys.intern(r.get("kind", "")),
                     r.get("name", ""), bool(r.get("blockOwnerDeletion")), bool(r.get("controller")))
                 for r in refs)


class Node:
    __slots__ = ("identity", "owners", "dependents", "virtual", "being_deleted", "deleting_dependents")

    def __init__(self, identity: Identity, owners: tuple[Ref, ...] = (), virtual: bool = False):
        self.identity = identity
        self.owners = owners
        self.dependents: set[Node] | None = None
        self.virtual = virtual
        self.being_deleted = False
        self.deleting_dependents = False

    @property
    def uid(self) -> str:
        return self.identity.uid

    def deps(self) -> list[Node]:
        return list(self.dependents) if self.dependents else []

    def add_dependent(self, n: Node) -> None:
        if self.dependents is None:
            self.dependents = set()
        self.dependents.add(n)

    def remove_dependent(self, n: Node) -> None:
        if self.dependents:
            self.dependents.discard(n)
            if not self.dependents:
                self.dependents = None

    def blocking_dependents(self) -> list[Node]:
        """Dependents whose reference to this node has blockOwnerDeletion."""
        uid = self.uid
        return [d for d in self.deps() if any(r.uid == uid and r.block for r in d.owners)]

    def __repr__(self) -> str:
        return f"Node({self.identity}{', virtual' if self.virtual else ''})"


class AbsentCache:
    """Owners known not to exist (an LRU of identities), kube's absentOwnerCache."""

    def __init__(self, size: int = 500):
        self.size = size
        self._d: OrderedDict[tuple, None] = OrderedDict()

    @staticmethod
    def _key(ident: Identity) -> tuple:
        return (ident.uid, ident.api_version.rpartition("/")[0], ident.kind, ident.namespace, ident.name)

    def add(self, ident: Identity) -> None:
        k = self._key(ident)
        self._d[k] = None
        self._d.move_to_end(k)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def has(self, ident: Identity) -> bool:
        k = self._key(ident)
        if k in self._d:
            self._d.move_to_end(k)
            return True
        return False


def identity_of(obj: Obj, api_version: str, kind: str) -> Identity:
    md = obj["metadata"]
    return Identity(api_version, kind, sys.intern(md.get("namespace") or ""), md.get("name", ""), md.get("uid", ""))


def _deleting(md: dict[str, Any], finalizer: str) -> bool:
    return bool(md.get("deletionTimestamp")) and finalizer in (md.get("finalizers") or ())


def _starts(old: Obj | None, new: Obj, finalizer: str) -> bool:
    """The object has just entered deletion waiting on ``finalizer``."""
    if not _deleting(new["metadata"], finalizer):
        return False
    return old is None or not _deleting(old.get("metadata") or {}, finalizer)


class Graph:
    def __init__(self, attempt_delete: Callable[[str], None], attempt_orphan: Callable[[str], None],
                 absent: AbsentCache | None = None,
                 report_invalid_namespace: Callable[[Node, Ref], None] | None = None):
        self.nodes: dict[str, Node] = {}
        self.attempt_delete = attempt_delete
        self.attempt_orphan = attempt_orphan
        self.absent = absent or AbsentCache()
        self.report_invalid_namespace = report_invalid_namespace or (lambda n, r: None)

    def __len__(self) -> int:
        return len(self.nodes)

    # ---- informer events ---------------------------------------------------

    def on_upsert(self, old: Obj | None, new: Obj, api_version: str, kind: str) -> None:
        md = new["metadata"]
        uid = md.get("uid")
        if not uid:
            return
        n = self.nodes.get(uid)
        if n is not None and not n.virtual and old is not None and _same_meta(old, new):
            return  # nothing the graph cares about changed (the hot path: status updates)
        ident = identity_of(new, api_version, kind)
        if n is not None and n.virtual:
            n = self._observe_virtual(n, ident)
        owners = parse_refs(md)
        being_deleted = bool(md.get("deletionTimestamp"))
        if n is None:
            n = Node(ident, owners)
            n.being_deleted = being_deleted
            n.deleting_dependents = being_deleted and FOREGROUND in (md.get("finalizers") or ())
            self.nodes[uid] = n
            self._add_to_owners(n, owners)
            self._transitions(old, new, n)
            return
        if owners != n.owners:
            added, removed, changed = _diff(n.owners, owners)
            self._unblocked_owners(removed, changed)
            n.owners = owners
            self._add_to_owners(n, added)
            self._remove_from_owners(n, removed)
        if being_deleted:
            n.being_deleted = True
        self._transitions(old, new, n)

    def on_delete(self, obj: Obj, api_version: str, kind: str) -> None:
        uid = obj["metadata"].get("uid")
        n = self.nodes.get(uid) if uid else None
        if n is None:
            return
        self._remove(n, identity_of(obj, api_version, kind))

    def virtual_delete(self, ident: Identity) -> None:
        """The collector found ``ident`` absent from the API server."""
        n = self.nodes.get(ident.uid)
        if n is None:
            return
        if not n.virtual and n.identity != ident:
            # an observed object disagrees with the coordinates found absent:
            # only the dependents that used those coordinates lose their owner
            matching = [d for d in n.deps() if _refers_as(d, ident)]
            if matching:
                self.absent.add(ident)
                for d in matching:
                    self.attempt_delete(d.uid)
            return
        self._remove(n, ident)

    # ---- helpers -----------------------------------------------------------

    def _observe_virtual(self, n: Node, observed: Identity) -> Node:
        """A virtual node's object has been seen by an informer."""
        if observed != n.identity:
            for d in n.deps():
                if not _refers_as(d, observed):
                    if observed.namespace and d.identity.namespace != observed.namespace:
                        ref = next((r for r in d.owners if r.uid == observed.uid), None)
                        if ref is not None:
                            self.report_invalid_namespace(d, ref)
                    self.attempt_delete(d.uid)
            n.identity = observed
        n.virtual = False
        return n

    def _add_to_owners(self, n: Node, owners: Iterable[Ref]) -> None:
        potentially_invalid = False
        for ref in owners:
            o = self.nodes.get(ref.uid)
            if o is None:
                o = Node(ref.identity(n.identity.namespace), virtual=True)
                self.nodes[ref.uid] = o
                o.add_dependent(n)
                self.attempt_delete(o.uid)  # is it there at all? the collector asks the API server
                continue
            o.add_dependent(n)
            if not o.virtual:
                oi = o.identity
                if oi.namespace and oi.namespace != n.identity.namespace:
                    self.report_invalid_namespace(n, ref)
                    potentially_invalid = True
                elif ref.identity(oi.namespace) != oi:
                    potentially_invalid = True
        if potentially_invalid:
            self.attempt_delete(n.uid)

    def _remove_from_owners(self, n: Node, owners: Iterable[Ref]) -> None:
        for ref in owners:
            o = self.nodes.get(ref.uid)
            if o is not None:
                o.remove_dependent(n)

    def _unblocked_owners(self, removed: list[Ref], changed: list[tuple[Ref, Ref]]) -> None:
        """A blocking reference went away: its owner may now finish foreground deletion."""
        for ref in removed:
            if ref.block and ref.uid in self.nodes:
                self.attempt_delete(ref.uid)
        for old, new in changed:
            if old.block and not new.block and new.uid in self.nodes:
                self.attempt_delete(new.uid)

    def _transitions(self, old: Obj | None, new: Obj, n: Node) -> None:
        if _starts(old, new, ORPHAN):
            self.attempt_orphan(n.uid)
            return
        if _starts(old, new, FOREGROUND):
            n.deleting_dependents = True
            for d in n.deps():
                self.attempt_delete(d.uid)
            self.attempt_delete(n.uid)

    def _remove(self, n: Node, ident: Identity) -> None:
        self.nodes.pop(n.uid, None)
        self._remove_from_owners(n, n.owners)
        deps = n.deps()
        if deps:
            self.absent.add(ident)
        for d in deps:
            self.attempt_delete(d.uid)
        for ref in n.owners:
            o = self.nodes.get(ref.uid)
            if o is not None and o.deleting_dependents:
                self.attempt_delete(o.uid)


def _refers_as(dep: Node, ident: Identity) -> bool:
    """Does ``dep`` name its owner ``ident.uid`` with exactly these coordinates?"""
    for r in dep.owners:
        if r.uid == ident.uid:
            ns = ident.namespace
            return (r.api_version, r.kind, r.name) == (ident.api_version, ident.kind, ident.name) and (
                not ns or ns == dep.identity.namespace)
    return False


def _same_meta(old: Obj, new: Obj) -> bool:
    a, b = old.get("metadata") or {}, new["metadata"]
    return (a.get("ownerReferences") == b.get("ownerReferences")
            and a.get("deletionTimestamp") == b.get("deletionTimestamp")
            and a.get("finalizers") == b.get("finalizers"))


def _diff(old: tuple[Ref, ...], new: tuple[Ref, ...]) -> tuple[list[Ref], list[Ref], list[tuple[Ref, Ref]]]:
    olds = {r.uid: r for r in old}
    news = {r.uid: r for r in new}
    added = [r for u, r in news.items() if u not in olds]
    removed = [r for u, r in olds.items() if u not in news]
    changed = [(olds[u], r) for u, r in news.items() if u in olds and olds[u] != r]
    return added, removed, changed
