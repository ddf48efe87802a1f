"""ControllerRevision history, shared by the DaemonSet and StatefulSet
controllers (kube's ``pkg/controller/history`` and the DaemonSet's
``update.go`` snapshots).

A revision holds ``data``: the owner's pod template as the strategic merge
patch ``{"spec": {"template": {..., "$patch": "replace"}}}`` that
``kubectl rollout undo`` applies to roll back.  Revisions are named
``<owner>-<hash>`` where the hash is FNV-32a of the hashed bytes (plus the
owner's ``collisionCount`` when one is set), spelled in kube's safe
alphabet; a name taken by a different revision bumps the collision count
and tries again.  ``revision`` numbers grow; rolling back to an old
template re-numbers its revision instead of copying it.  History beyond
``revisionHistoryLimit`` is trimmed, oldest first, never a live one.

"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import orjson

from ..client.informer import InformerFactory
from ..client.rest import Client, is_already_exists, is_not_found, resource
from .controller_utils import BY_CONTROLLER, add_owner_indexes, compute_hash, new_controller_ref

Obj = dict[str, Any]

CONTROLLER_REVISIONS = resource("controllerrevisions.apps")
HASH_LABEL = "controller.kubernetes.io/hash"          # history.ControllerRevisionHashLabel
POD_REVISION_LABEL = "controller-revision-hash"       # apps.ControllerRevisionHashLabelKey
_MAX_PREFIX = 223


# --- hashing ---------------------------------------------------------------------------------------
def canonical(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def template_patch(owner: Obj) -> Obj:
    """``getPatch``: the owner's template as a replacing strategic merge patch."""
    template = copy.deepcopy(owner["spec"].get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def apply_revision(owner: Obj, rev: Obj) -> Obj:
    """``ApplyRevision``: the owner with the revision's template."""
    out = dict(owner)
    out["spec"] = dict(owner["spec"])
    template = copy.deepcopy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    out["spec"]["template"] = template
    return out


# --- revisions -------------------------------------------------------------------------------------
def number(rev: Obj) -> int:
    return int(rev.get("revision") or 0)


def sort_revisions(revs: Iterable[Obj]) -> list[Obj]:
    """``SortControllerRevisions``: by revision, then creation time, then name."""
    return sorted(revs, key=lambda r: (number(r), r["metadata"].get("creationTimestamp") or "",
                                       r["metadata"]["name"]))


def next_revision(revs: list[Obj]) -> int:
    return max((number(r) for r in revs), default=0) + 1


def same_data(a: Obj, b: Obj) -> bool:
    return canonical(a.get("data")) == canonical(b.get("data"))


def new_revision(owner: Obj, data: Obj, revision: int, labels: dict[str, str]) -> Obj:
    """A ControllerRevision of ``owner`` (unnamed: :meth:`History.create` names it)."""
    md = owner["metadata"]
    meta: Obj = {"namespace": md.get("namespace"), "labels": dict(labels),
                 "ownerReferences": [new_controller_ref(owner, "apps/v1", owner["kind"])]}
    if md.get("annotations"):
        meta["annotations"] = dict(md["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": data, "revision": revision}


class History:
    """Reads revisions from the shared informer; writes through the client."""

    def __init__(self, client: Client, informers: InformerFactory,
                 on_event: Callable[[Obj], None] | None = None):
        self.client = client
        self.informers = informers
        inf = informers.informer(CONTROLLER_REVISIONS)
        add_owner_indexes(inf.store)
        self.store = inf.store
        if on_event is not None:
            inf.add_handler(on_event, lambda old, new: on_event(new), on_event)

    def list(self, owner: Obj) -> list[Obj]:
        """The owner's revisions, oldest first."""
        return sort_revisions(self.store.by_index(BY_CONTROLLER, owner["metadata"]["uid"]))

    async def create(self, owner: Obj, rev: Obj, hashed: Any, collision_count: int,
                     label: str | None = None) -> tuple[Obj, int]:
        """``CreateControllerRevision``: names ``rev`` by the hash of
        ``hashed`` (and ``label``, if given, gets the hash); on a name taken
        by other data, bumps the collision count and tries again.  Returns
        the revision (created or found equal) and the collision count."""
        while True:
            h = compute_hash(hashed, collision_count or None)
            body = copy.deepcopy(rev)
            body["metadata"]["name"] = revision_name(owner["metadata"]["name"], h)
            if label:
                body["metadata"]["labels"][label] = h
            try:
                return await self.client.create(CONTROLLER_REVISIONS, body), collision_count
            except Exception as e:
                if not is_already_exists(e):
                    raise
            existing = await self.client.get(CONTROLLER_REVISIONS, body["metadata"]["name"],
                                             owner["metadata"]["namespace"])
            if same_data(existing, body):
                return existing, collision_count
            collision_count += 1

    async def renumber(self, rev: Obj, revision: int) -> Obj:
        """``UpdateControllerRevision``: give an old revision a new number (a roll back)."""
        if number(rev) == revision:
            return rev
        body = copy.deepcopy(rev)
        body["revision"] = revision
        return await self.client.update(CONTROLLER_REVISIONS, body)

    async def truncate(self, revisions: list[Obj], live: set[str], limit: int) -> None:
        """Deletes the oldest non-live revisions beyond ``limit``."""
        history = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in live]
        for r in history[:max(0, len(history) - limit)]:
            try:
                await self.client.delete(CONTROLLER_REVISIONS, r["metadata"]["name"],
                                         r["metadata"]["namespace"], uid=r["metadata"]["uid"])
            except Exception as e:
                if not is_not_found(e):
                    raise
