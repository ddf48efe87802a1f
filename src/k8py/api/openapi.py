"""OpenAPI documents describing k8py's API, built from the registry and the schema.

* ``GET /openapi/v3`` -> :func:`openapi_index` (``{"paths": {"api/v1":
  {"serverRelativeURL": "/openapi/v3/api/v1?hash=<HASH>"}, ...}}``);
* ``GET /openapi/v3/api/v1``, ``/openapi/v3/apis/<group>/<version>`` ->
  :func:`openapi_document` (OpenAPI 3.0: paths with operations carrying
  ``x-kubernetes-group-version-kind`` / ``x-kubernetes-action`` and the
  reachable ``components.schemas``);
* ``GET /openapi/v2`` -> :func:`openapi_v2_json` (Swagger 2.0) or, for the
  protobuf media type kubectl asks for, :func:`openapi_v2_protobuf`.

:func:`serve_v3` and :func:`serve_v2` turn a request into (status, headers,
body) the way kube-apiserver answers, so the HTTP layer only has to route.

Hashes are the upper-case hex SHA-512 of the JSON bytes, as kube-openapi does.
Everything is computed once per process and cached.
"""

from __future__ import annotations

import copy
import email.utils
import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from k8py.api import openapi_pb
from k8py.api.registry import REGISTRY, Resource
from k8py.api.schema import REF_PREFIX, Schema, load

V3_PREFIX = "/openapi/v3/"
V2_REF = "#/definitions/"
PATCH_MEDIA = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
MEDIA = ("application/json", "application/yaml")
WATCH_MEDIA = MEDIA + ("application/json;stream=watch",)
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_PROTOBUF_V2_SUBTYPES = (
    "com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "com.github.proto-openapi.spec.v2.v1.0+protobuf",
)
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
WATCH_EVENT = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
SCALE = ("autoscaling", "v1", "Scale")
TITLE = "Kubernetes"
API_VERSION = "v1.33.0"

# name -> (in, type, description)
PARAMS: dict[str, tuple[str, str, str]] = {
    "name": ("path", "string", "Name of the object."),
    "namespace": ("path", "string", "Namespace of the object."),
    "pretty": ("query", "string", "Pretty-print the output when 'true'."),
    "dryRun": ("query", "string", "'All' runs every stage of the request without persisting anything."),
    "fieldManager": ("query", "string", "Name of the actor making the change (for managedFields)."),
    "fieldValidation": ("query", "string",
                        "How to treat unknown or duplicate fields in the body: Ignore, Warn (default) or Strict."),
    "force": ("query", "boolean", "Take ownership of conflicting fields (apply patches only)."),
    "gracePeriodSeconds": ("query", "integer", "Seconds before the object is deleted."),
    "orphanDependents": ("query", "boolean", "Deprecated: orphan the dependents instead of deleting them."),
    "propagationPolicy": ("query", "string", "Garbage collection policy: Orphan, Background or Foreground."),
    "allowWatchBookmarks": ("query", "boolean", "Ask for BOOKMARK watch events."),
    "continue": ("query", "string", "Continue token from a previous paginated list."),
    "fieldSelector": ("query", "string", "Restrict results by field values."),
    "labelSelector": ("query", "string", "Restrict results by labels."),
    "limit": ("query", "integer", "Maximum number of items in one list response."),
    "resourceVersion": ("query", "string", "Resource version to serve the request at."),
    "resourceVersionMatch": ("query", "string", "How resourceVersion is applied: Exact or NotOlderThan."),
    "sendInitialEvents": ("query", "boolean", "Start a watch with synthetic ADDED events for the current state."),
    "timeoutSeconds": ("query", "integer", "Timeout of list/watch calls."),
    "watch": ("query", "boolean", "Watch for changes instead of listing."),
    "container": ("query", "string", "Container to read logs of."),
    "follow": ("query", "boolean", "Stream the log."),
    "limitBytes": ("query", "integer", "Stop after this many bytes."),
    "previous": ("query", "boolean", "Logs of the previous container instance."),
    "sinceSeconds": ("query", "integer", "Only logs newer than this many seconds."),
    "tailLines": ("query", "integer", "Number of lines from the end of the log."),
    "timestamps": ("query", "boolean", "Prefix every line with its timestamp."),
}
LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
               "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
LOG_PARAMS = ("container", "follow", "limitBytes", "previous", "sinceSeconds", "tailLines", "timestamps")


@dataclass
class Op:
    """One HTTP operation of a path, independent of the OpenAPI version."""

    method: str  # get|put|post|patch|delete
    action: str  # x-kubernetes-action
    op_id: str
    description: str
    gvk: tuple[str, str, str]
    params: tuple[str, ...] = ()
    body: str | None = None  # definition of the request body
    response: str | None = None  # definition of the 200 answer; None -> string
    consumes: tuple[str, ...] = ("*/*",)
    produces: tuple[str, ...] = MEDIA
    codes: tuple[str, ...] = ("200",)


@dataclass
class PathSpec:
    path: str
    params: tuple[str, ...]  # path-level parameters
    ops: list[Op] = field(default_factory=list)


def _gv_key(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _camel_group(group: str, version: str) -> str:
    if not group:
        return "CoreV" + version[1:]
    name = group.removesuffix(".k8s.io")
    return "".join(p[:1].upper() + p[1:] for p in name.split(".")) + "V" + version[1:]


def _gvk_dict(gvk: tuple[str, str, str]) -> dict[str, str]:
    return {"group": gvk[0], "kind": gvk[2], "version": gvk[1]}


class _Builder:
    """Builds the path specs of one group-version from the registry."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def kind_def(self, gvk: tuple[str, str, str]) -> str:
        name = self.schema.type_for_kind(*gvk)
        if name is None:
            raise LookupError(f"no schema for {gvk}")
        return name

    def paths_for(self, group: str, version: str) -> list[PathSpec]:
        out: list[PathSpec] = []
        for r in REGISTRY.in_group_version(group, version):
            out.extend(self.resource_paths(r))
        return out

    def resource_paths(self, r: Resource) -> list[PathSpec]:
        base = "/api/" + r.version if not r.group else f"/apis/{r.group}/{r.version}"
        gvk = (r.group, r.version, r.kind)
        obj = self.kind_def(gvk)
        lst = self.schema.type_for_kind(r.group, r.version, r.list_kind)
        cg = _camel_group(r.group, r.version)
        ns = "Namespaced" if r.namespaced else ""
        verbs = set(r.verbs)
        if r.namespaced:
            coll = PathSpec(f"{base}/namespaces/{{namespace}}/{r.plural}", ("namespace", "pretty"))
            item = PathSpec(f"{coll.path}/{{name}}", ("name", "namespace", "pretty"))
        else:
            coll = PathSpec(f"{base}/{r.plural}", ("pretty",))
            item = PathSpec(f"{coll.path}/{{name}}", ("name", "pretty"))
        kind = r.kind
        if "delete" in verbs and "deletecollection" in verbs:
            coll.ops.append(Op("delete", "deletecollection", f"delete{cg}Collection{ns}{kind}",
                               f"Delete a collection of {kind}.", gvk, ("continue",) + DELETE_PARAMS + LIST_PARAMS[2:-1],
                               DELETE_OPTIONS, STATUS))
        if "list" in verbs and lst:
            coll.ops.append(Op("get", "list", f"list{cg}{ns}{kind}", f"List or watch {kind} objects.", gvk,
                               LIST_PARAMS, None, lst, produces=WATCH_MEDIA))
        if "create" in verbs:
            coll.ops.append(Op("post", "post", f"create{cg}{ns}{kind}", f"Create a {kind}.", gvk, WRITE_PARAMS,
                               obj, obj, codes=("200", "201", "202")))
        if "get" in verbs:
            item.ops.append(Op("get", "get", f"read{cg}{ns}{kind}", f"Read the given {kind}.", gvk, (), None, obj))
        if "update" in verbs:
            item.ops.append(Op("put", "put", f"replace{cg}{ns}{kind}", f"Replace the given {kind}.", gvk,
                               WRITE_PARAMS, obj, obj, codes=("200", "201")))
        if "patch" in verbs:
            item.ops.append(Op("patch", "patch", f"patch{cg}{ns}{kind}", f"Partially update the given {kind}.", gvk,
                               WRITE_PARAMS + ("force",), PATCH, obj, consumes=PATCH_MEDIA, codes=("200", "201")))
        if "delete" in verbs:
            item.ops.append(Op("delete", "delete", f"delete{cg}{ns}{kind}", f"Delete the given {kind}.", gvk,
                               DELETE_PARAMS, DELETE_OPTIONS, obj, codes=("200", "202")))
        out = [p for p in (coll, item) if p.ops]
        if r.namespaced and "list" in verbs and lst:
            every = PathSpec(f"{base}/{r.plural}", ("pretty",) + LIST_PARAMS)
            every.ops.append(Op("get", "list", f"list{cg}{kind}ForAllNamespaces",
                                f"List or watch {kind} objects of every namespace.", gvk, (), None, lst,
                                produces=WATCH_MEDIA))
            out.append(every)
        if "watch" in verbs:
            out.extend(self.watch_paths(r, base, cg, ns, gvk))
        for sub in r.subresources:
            spec = self.subresource_path(r, sub, item, cg, ns, gvk, obj)
            if spec is not None and spec.ops:
                out.append(spec)
        return out

    def watch_paths(self, r: Resource, base: str, cg: str, ns: str, gvk: tuple[str, str, str]) -> list[PathSpec]:
        kind = r.kind
        specs: list[PathSpec] = []
        if r.namespaced:
            prefix = f"{base}/watch/namespaces/{{namespace}}/{r.plural}"
            specs.append(PathSpec(prefix, ("namespace", "pretty") + LIST_PARAMS, [Op(
                "get", "watchlist", f"watch{cg}{ns}{kind}List", f"Watch {kind} objects.", gvk, (), None,
                WATCH_EVENT, produces=WATCH_MEDIA)]))
            specs.append(PathSpec(prefix + "/{name}", ("name", "namespace", "pretty") + LIST_PARAMS, [Op(
                "get", "watch", f"watch{cg}{ns}{kind}", f"Watch one {kind}.", gvk, (), None, WATCH_EVENT,
                produces=WATCH_MEDIA)]))
            specs.append(PathSpec(f"{base}/watch/{r.plural}", ("pretty",) + LIST_PARAMS, [Op(
                "get", "watchlist", f"watch{cg}{kind}ListForAllNamespaces",
                f"Watch {kind} objects of every namespace.", gvk, (), None, WATCH_EVENT, produces=WATCH_MEDIA)]))
        else:
            prefix = f"{base}/watch/{r.plural}"
            specs.append(PathSpec(prefix, ("pretty",) + LIST_PARAMS, [Op(
                "get", "watchlist", f"watch{cg}{kind}List", f"Watch {kind} objects.", gvk, (), None, WATCH_EVENT,
                produces=WATCH_MEDIA)]))
            specs.append(PathSpec(prefix + "/{name}", ("name", "pretty") + LIST_PARAMS, [Op(
                "get", "watch", f"watch{cg}{kind}", f"Watch one {kind}.", gvk, (), None, WATCH_EVENT,
                produces=WATCH_MEDIA)]))
        return specs

    def subresource_path(self, r: Resource, sub: str, item: PathSpec, cg: str, ns: str,
                         gvk: tuple[str, str, str], obj: str) -> PathSpec | None:
        spec = PathSpec(f"{item.path}/{sub}", item.params)
        suffix = sub[:1].upper() + sub[1:]
        if sub == "ephemeralcontainers":
            suffix = "EphemeralContainers"
        base_id = f"{cg}{ns}{r.kind}{suffix}"
        what = f"{sub} of the given {r.kind}"
        if sub in ("status", "scale", "ephemeralcontainers"):
            sgvk = SCALE if sub == "scale" else gvk
            sdef = self.kind_def(sgvk)
            spec.ops += [
                Op("get", "get", "read" + base_id, f"Read {what}.", sgvk, (), None, sdef),
                Op("put", "put", "replace" + base_id, f"Replace {what}.", sgvk, WRITE_PARAMS, sdef, sdef,
                   codes=("200", "201")),
                Op("patch", "patch", "patch" + base_id, f"Partially update {what}.", sgvk, WRITE_PARAMS + ("force",),
                   PATCH, sdef, consumes=PATCH_MEDIA, codes=("200", "201")),
            ]
        elif sub in ("binding", "eviction", "token"):
            sgvk = {"binding": ("", "v1", "Binding"), "eviction": ("policy", "v1", "Eviction"),
                    "token": ("authentication.k8s.io", "v1", "TokenRequest")}[sub]
            sdef = self.kind_def(sgvk)
            spec.ops.append(Op("post", "post", "create" + base_id, f"Create {what}.", sgvk, WRITE_PARAMS, sdef, sdef,
                               codes=("200", "201", "202")))
        elif sub == "finalize":
            spec.ops.append(Op("put", "put", "replace" + base_id, f"Replace {what}.", gvk, WRITE_PARAMS, obj, obj,
                               codes=("200", "201")))
        elif sub == "log":
            spec.ops.append(Op("get", "get", "read" + base_id, f"Read {what}.", gvk, LOG_PARAMS, None, None,
                               produces=("text/plain",) + MEDIA))
        else:
            return None  # connect subresources (exec, attach, portforward, proxy) are not described
        return spec


# ---------------------------------------------------------------------------
# schema conversion
# ---------------------------------------------------------------------------

def _reachable(schema: Schema, roots: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    stack = [r for r in roots]
    while stack:
        name = stack.pop()
        if name in seen or not schema.has(name):
            continue
        seen[name] = None
        _collect_refs(schema.definition(name), stack)
    return sorted(seen)


def _collect_refs(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            out.append(ref[len(REF_PREFIX):])
        for v in node.values():
            _collect_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect_refs(v, out)


def _v3_property(prop: dict[str, Any]) -> dict[str, Any]:
    """Stored property -> v3: a $ref with siblings becomes allOf (OpenAPI 3.0 ignores $ref siblings)."""
    out = dict(prop)
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _v3_definition(d: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(d)
    if "properties" in out:
        out["properties"] = {k: _v3_property(v) for k, v in out["properties"].items()}
    return out


def _v2_node(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(REF_PREFIX):
                out[k] = V2_REF + v[len(REF_PREFIX):]
            else:
                out[k] = _v2_node(v)
        return out
    if isinstance(node, list):
        return [_v2_node(v) for v in node]
    return node


def _v2_definition(name: str, d: dict[str, Any]) -> dict[str, Any]:
    out = _v2_node(d)
    if "oneOf" in out:  # Quantity / IntOrString: Swagger 2.0 has no oneOf
        out.pop("oneOf")
        out["type"] = "string"
    return out


# ---------------------------------------------------------------------------
# documents
# ---------------------------------------------------------------------------

def _v3_parameter(name: str) -> dict[str, Any]:
    where, typ, desc = PARAMS[name]
    p: dict[str, Any] = {"name": name, "in": where, "description": desc,
                         "schema": {"type": typ, "uniqueItems": True}}
    if where == "path":
        p["required"] = True
    return p


def _v3_operation(op: Op, tag: str) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "description": op.description, "operationId": op.op_id}
    if op.params:
        out["parameters"] = [_v3_parameter(p) for p in op.params]
    if op.body is not None:
        body_ref = {"$ref": REF_PREFIX + op.body} if op.body != PATCH else {"type": "object"}
        out["requestBody"] = {"content": {m: {"schema": body_ref} for m in op.consumes},
                              "required": op.body != DELETE_OPTIONS}
    resp_schema = {"$ref": REF_PREFIX + op.response} if op.response else {"type": "string"}
    responses: dict[str, Any] = {}
    for code in op.codes:
        desc = {"200": "OK", "201": "Created", "202": "Accepted"}[code]
        responses[code] = {"description": desc, "content": {m: {"schema": resp_schema} for m in op.produces}}
    responses["401"] = {"description": "Unauthorized"}
    out["responses"] = responses
    out["x-kubernetes-action"] = op.action
    out["x-kubernetes-group-version-kind"] = _gvk_dict(op.gvk)
    return out


def _tag(group: str, version: str) -> str:
    name = group.removesuffix(".k8s.io") or "core"
    parts = name.split(".")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:]) + "_" + version


def _build_v3(schema: Schema, group: str, version: str) -> dict[str, Any]:
    specs = _Builder(schema).paths_for(group, version)
    tag = _tag(group, version)
    paths: dict[str, Any] = {}
    roots: list[str] = []
    for spec in specs:
        item: dict[str, Any] = {}
        for op in spec.ops:
            item[op.method] = _v3_operation(op, tag)
            roots += [n for n in (op.body, op.response) if n and n != PATCH]
        if spec.params:
            item["parameters"] = [_v3_parameter(p) for p in spec.params]
        paths[spec.path] = item
    names = _reachable(schema, roots + [STATUS, DELETE_OPTIONS, WATCH_EVENT])
    return {
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": API_VERSION},
        "paths": paths,
        "components": {
            "schemas": {n: _v3_definition(schema.definition(n)) for n in names},
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer token authentication",
                                                "name": "authorization", "in": "header"}},
        },
    }


def _v2_parameter(name: str) -> dict[str, Any]:
    where, typ, desc = PARAMS[name]
    p: dict[str, Any] = {"name": name, "in": where, "description": desc, "type": typ, "uniqueItems": True}
    if where == "path":
        p["required"] = True
    return p


def _v2_operation(op: Op, tag: str) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "description": op.description, "operationId": op.op_id,
                           "consumes": list(op.consumes), "produces": list(op.produces), "schemes": ["https"]}
    params: list[dict[str, Any]] = []
    if op.body is not None:
        body_ref = {"$ref": V2_REF + op.body} if op.body != PATCH else {"type": "object"}
        params.append({"name": "body", "in": "body", "required": op.body != DELETE_OPTIONS, "schema": body_ref})
    params += [_v2_parameter(p) for p in op.params]
    if params:
        out["parameters"] = params
    resp_schema = {"$ref": V2_REF + op.response} if op.response else {"type": "string"}
    responses: dict[str, Any] = {}
    for code in op.codes:
        desc = {"200": "OK", "201": "Created", "202": "Accepted"}[code]
        responses[code] = {"description": desc, "schema": resp_schema}
    responses["401"] = {"description": "Unauthorized"}
    out["responses"] = responses
    out["x-kubernetes-action"] = op.action
    out["x-kubernetes-group-version-kind"] = _gvk_dict(op.gvk)
    return out


def _build_v2(schema: Schema) -> dict[str, Any]:
    builder = _Builder(schema)
    paths: dict[str, Any] = {}
    roots: list[str] = []
    for group, version in _group_versions():
        tag = _tag(group, version)
        for spec in builder.paths_for(group, version):
            item: dict[str, Any] = {}
            for op in spec.ops:
                item[op.method] = _v2_operation(op, tag)
                roots += [n for n in (op.body, op.response) if n and n != PATCH]
            if spec.params:
                item["parameters"] = [_v2_parameter(p) for p in spec.params]
            paths[spec.path] = item
    names = _reachable(schema, roots + [STATUS, DELETE_OPTIONS, WATCH_EVENT])
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": API_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": {n: _v2_definition(n, schema.definition(n)) for n in names},
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer token authentication",
                                                "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }


def _group_versions() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for group, versions in REGISTRY.groups():
        for v in versions:
            out.append((group, v))
    return out


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _etag(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


@functools.lru_cache(maxsize=None)
def _v3_docs() -> dict[str, tuple[bytes, str]]:
    schema = load()
    docs: dict[str, tuple[bytes, str]] = {}
    for group, version in _group_versions():
        data = _dumps(_build_v3(schema, group, version))
        docs[_gv_key(group, version)] = (data, _etag(data))
    return docs


@functools.lru_cache(maxsize=None)
def _v3_index() -> tuple[bytes, str]:
    paths = {key: {"serverRelativeURL": f"{V3_PREFIX}{key}?hash={etag}"}
             for key, (_, etag) in sorted(_v3_docs().items())}
    data = _dumps({"paths": paths})
    return data, _etag(data)


def _normalize(path: str) -> str:
    path = path.split("?", 1)[0].strip("/")
    if path.startswith("openapi/v3/"):
        path = path[len("openapi/v3/"):]
    return path


def openapi_index() -> bytes:
    """Body of ``GET /openapi/v3``."""
    return _v3_index()[0]


def openapi_document(path: str) -> bytes | None:
    """Body of ``GET /openapi/v3/<path>`` (``api/v1``, ``apis/apps/v1``); None when unknown."""
    entry = _v3_docs().get(_normalize(path))
    return entry[0] if entry else None


def document_hash(path: str) -> str | None:
    """The ``hash`` (and ETag) of a v3 document; None when unknown."""
    entry = _v3_docs().get(_normalize(path))
    return entry[1] if entry else None


def v3_paths() -> list[str]:
    return sorted(_v3_docs())


@functools.lru_cache(maxsize=None)
def _v2() -> tuple[bytes, bytes, str]:
    doc = _build_v2(load())
    data = _dumps(doc)
    return data, openapi_pb.encode_document(doc), _etag(data)


def warm() -> None:
    """Build and cache every document (about a second); call once at server start, off the event loop."""
    _v3_index()
    _v2()


def openapi_v2_json() -> bytes:
    """Swagger 2.0 JSON of the whole API (``GET /openapi/v2`` with ``Accept: application/json``)."""
    return _v2()[0]


def openapi_v2_protobuf() -> bytes:
    """The same document as gnostic ``openapi_v2.Document`` protobuf (what kubectl asks for)."""
    return _v2()[1]


def openapi_v2_etag() -> str:
    return _v2()[2]


# ---------------------------------------------------------------------------
# request helpers: (status, headers, body)
# ---------------------------------------------------------------------------

Response = tuple[int, dict[str, str], bytes]


def _immutable_headers() -> dict[str, str]:
    # kube-openapi: cacheable forever; Expires one year from the request.
    return {"Cache-Control": "public, immutable",
            "Expires": email.utils.formatdate(time.time() + 365 * 86400, usegmt=True)}


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or f'"{etag}"' in tags


def serve_v3(path: str, query_hash: str | None = None, if_none_match: str | None = None) -> Response:
    """Answer ``GET /openapi/v3`` (path ``""``) or ``GET /openapi/v3/<gv>``.

    A ``?hash=`` that matches gets immutable caching headers; a stale one is
    redirected (301) to the current URL, as kube-apiserver does.
    """
    key = _normalize(path)
    if key in ("", "openapi/v3"):
        data, etag = _v3_index()
        headers = {"Content-Type": "application/json", "ETag": f'"{etag}"'}
        if _etag_matches(if_none_match, etag):
            return 304, headers, b""
        return 200, headers, data
    entry = _v3_docs().get(key)
    if entry is None:
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"
    data, etag = entry
    headers = {"Content-Type": "application/json", "ETag": f'"{etag}"', "Vary": "Accept"}
    if query_hash:
        if query_hash != etag:
            return 301, {"Location": f"{V3_PREFIX}{key}?hash={etag}", "Content-Type": "text/html; charset=utf-8"}, b""
        headers.update(_immutable_headers())
    if _etag_matches(if_none_match, etag):
        return 304, headers, b""
    return 200, headers, data


def serve_v2(accept: str | None, if_none_match: str | None = None) -> Response:
    """Answer ``GET /openapi/v2`` honouring Accept (JSON or the gnostic protobuf); 406 otherwise."""
    clauses = [c.split(";", 1)[0].strip().lower() for c in (accept or "*/*").split(",")]
    for clause in clauses:
        typ, _, sub = clause.partition("/")
        if typ not in ("application", "*"):
            continue
        if sub in ("json", "*"):
            body, ctype = openapi_v2_json(), "application/json"
        elif sub in _PROTOBUF_V2_SUBTYPES:
            body, ctype = openapi_v2_protobuf(), PROTOBUF_V2
        else:
            continue
        etag = openapi_v2_etag()
        headers = {"Content-Type": ctype, "ETag": f'"{etag}"', "Vary": "Accept"}
        if _etag_matches(if_none_match, etag):
            return 304, headers, b""
        return 200, headers, body
    return 406, {"Vary": "Accept"}, b""
