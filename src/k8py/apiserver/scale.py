"""The subresources that are not the object itself: ``scale`` (an
autoscaling/v1 Scale view of spec.replicas), ``pods/binding`` (the
scheduler's assignment) and ``pods/eviction`` (a delete that respects
PodDisruptionBudgets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..api import labels
from . import errors
from .clock import now_rfc3339 as _now
from .encoding import Accept, parse_accept
from .patching import api_error

if TYPE_CHECKING:
    from .handlers import ResourceHandlers, Target


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    sel = spec.get("selector")
    if isinstance(sel, dict) and ("matchLabels" in sel or "matchExpressions" in sel):
        selector = str(labels.from_label_selector(sel))
    elif isinstance(sel, dict):  # ReplicationController: a plain map
        selector = ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
    else:
        selector = ""
    st: dict[str, Any] = {"replicas": status.get("replicas", 0)}
    if selector:
        st["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in md},
        "spec": {"replicas": spec.get("replicas", 0)} if spec.get("replicas") is not None else {},
        "status": st,
    }


async def handle(h: "ResourceHandlers", request: web.Request, t: "Target") -> web.Response:
    m = request.method
    r = t.r
    if m == "GET":
        obj = await h.ostore.get(r, t.ns, t.name)
        return h.send(to_scale(obj), _acc(request))
    if m not in ("PUT", "PATCH"):
        raise errors.method_not_allowed()
    opts = h.write_options(request)
    body = await h.read_body(request) if m == "PUT" else None
    ctype = request.headers.get("Content-Type", "")

    def mutate(old: dict[str, Any]) -> dict[str, Any]:
        cur = to_scale(old)
        if m == "PUT":
            new_scale = body
            if not isinstance(new_scale, dict):
                raise errors.bad_request("body must be a Scale object")
        else:
            from ..api import patch as _patch
            try:
                kind, p = _patch.parse_patch_body(ctype, request["raw_body"])
                if kind == "json":
                    new_scale = _patch.json_patch(cur, p)
                else:
                    new_scale = _patch.merge_patch(cur, p)
            except _patch.PatchError as e:
                raise api_error(e) from None
        rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(r.plural, r.group, t.name, errors.STALE)
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", t.name,
                                 f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: '
                                 f'{replicas}: must be greater than or equal to 0',
                                 [{"reason": "FieldValueInvalid", "field": "spec.replicas"}])
        old.setdefault("spec", {})["replicas"] = replicas
        return old

    if m == "PATCH":
        request["raw_body"] = await request.read()
    out = await h.ostore.guaranteed_update(r, t.ns, t.name, mutate, opts, "scale")
    return h.send(to_scale(out), _acc(request), 200, opts)


def _acc(request: web.Request) -> Accept:
    return parse_accept(request.headers.get("Accept"))


async def bind(h: "ResourceHandlers", request: web.Request, t: "Target",
               body: dict[str, Any] | None = None) -> web.Response:
    """POST pods/<name>/binding (or the legacy namespaces/<ns>/bindings)."""
    from ..api.registry import REGISTRY
    opts = h.write_options(request)
    if body is None:
        body = await h.read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("body must be a Binding")
    name = t.name if t.r.kind == "Pod" else (body.get("metadata") or {}).get("name", "")
    target = body.get("target") or {}
    node = target.get("name", "")
    if not node:
        raise errors.invalid("Binding", "", name, f'Binding "{name}" is invalid: target.name: Required value',
                             [{"reason": "FieldValueRequired", "field": "target.name"}])
    pods = REGISTRY.lookup("", "v1", "pods")
    assert pods is not None

    def mutate(pod: dict[str, Any]) -> dict[str, Any]:
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods", "", name, f"pod {name} is already assigned to node "
                                  f'"{spec["nodeName"]}"')
        spec["nodeName"] = node
        anns = (body.get("metadata") or {}).get("annotations") or {}
        if anns:
            pod["metadata"].setdefault("annotations", {}).update(anns)
        conds = pod.setdefault("status", {}).setdefault("conditions", [])
        conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": _now()})
        return pod

    # binding writes both spec and status: bypass the main-resource strategy
    await _raw_update(h, pods, t.ns, name, mutate, opts)
    return h.send({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                  _acc(request), 201)


async def _raw_update(h: "ResourceHandlers", r, ns, name, mutate, opts) -> dict[str, Any]:
    from ..storage.interface import ConflictError, KeyNotFoundError
    key = r.key(ns, name)
    for attempt in range(16):
        # the first round may start from the watch cache's copy: see
        # ObjectStore.read_for_update
        kv, from_cache = await h.ostore.read_for_update(r, key, attempt == 0)
        if kv is None:
            raise errors.not_found(r.plural, r.group, name)
        try:
            new = mutate(h.ostore.decode(r, kv))
        except errors.APIError:
            if from_cache:
                continue
            raise
        if opts.dry_run:
            if from_cache:
                continue
            return new
        try:
            rev = await h.ostore.store.update(kv.key, h.ostore.encode(r, new), kv.mod_revision)
        except (ConflictError, KeyNotFoundError) as e:
            if isinstance(e, KeyNotFoundError) and not from_cache:
                raise errors.not_found(r.plural, r.group, name)
            continue
        new["metadata"]["resourceVersion"] = str(rev)
        return new
    raise errors.conflict(r.plural, r.group, name, "too many concurrent updates")


async def evict(h: "ResourceHandlers", request: web.Request, t: "Target") -> web.Response:
    """Delete a pod unless that would break its PodDisruptionBudget. As kube
    does it: a pod that is pending, finished or already deleting goes at once;
    otherwise its one matching budget must allow a disruption, and taking it
    (disruptionsAllowed - 1, the pod in disruptedPods) is written with a
    compare-and-swap before the pod is deleted, so racing evictions cannot
    both spend the same disruption."""
    opts = h.write_options(request)
    body = await h.read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("body must be an Eviction")
    options = dict(body.get("deleteOptions") or {})
    from ..api.registry import REGISTRY
    pdbs = REGISTRY.lookup("policy", "v1", "poddisruptionbudgets")
    assert pdbs is not None
    for _ in range(8):
        pod = await h.ostore.get(t.r, t.ns, t.name)
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase in ("Succeeded", "Failed", "Pending"):
            break
        res = await h.ostore.list(pdbs, t.ns, None, 0, "", "", "")
        pod_labels = pod["metadata"].get("labels") or {}
        matching = [e for e in res.entries
                    if labels.from_label_selector((e.obj().get("spec") or {}).get("selector")).matches(pod_labels)]
        if not matching:
            break
        if len(matching) > 1:
            raise errors.APIError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which "
                                  "the eviction subresource does not support.")
        pdb = matching[0].obj()
        status = pdb.get("status") or {}
        allowed = status.get("disruptionsAllowed", 0)
        if allowed < 0:
            raise errors.forbidden("pods", "", t.name, "pdb disruptions allowed is negative")
        if allowed == 0:
            raise errors.APIError(
                429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                {"causes": [{"reason": "DisruptionBudget",
                             "message": f"The disruption budget {matching[0].name} needs "
                                        f"{status.get('desiredHealthy', 0)} healthy pods and has "
                                        f"{status.get('currentHealthy', 0)} currently"}]})
        if opts.dry_run:
            break

        def spend(cur: dict) -> dict:
            st = cur.setdefault("status", {})
            st["disruptionsAllowed"] = st.get("disruptionsAllowed", 0) - 1
            st.setdefault("disruptedPods", {})[t.name] = _now()
            return cur

        try:
            await h.ostore.guaranteed_update(pdbs, t.ns, matching[0].name, spend, opts, "status",
                                             want_rv=pdb["metadata"]["resourceVersion"])
        except errors.APIError as e:
            if e.code == 409:
                continue  # another eviction or the disruption controller won: look again
            raise
        break
    else:
        raise errors.too_many_requests("Cannot evict pod as it would violate the pod's disruption budget: "
                                       "too many conflicts", 10)
    await h.ostore.delete(t.r, t.ns, t.name, options, opts)
    return h.send({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                  _acc(request), 201)
