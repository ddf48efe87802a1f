"""Generic handlers for every resource: URL -> verb -> ObjectStore.

URLs: ``/api/v1/...`` and ``/apis/<group>/<version>/...`` followed by
``<plural>[/<name>[/<subresource>]]`` or
``namespaces/<ns>/<plural>[/<name>[/<subresource>]]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import orjson
from aiohttp import web

from ..api import conversion, fieldselectors, labels, tables
from ..api.registry import Registry, Resource
from . import errors, scale, watch
from .encoding import Accept, YAML, decode_body, dumps, parse_accept, partial_metadata, to_yaml
from .rest import ListResult, ObjectStore, WriteOptions
from .watchcache import Entry


@dataclass
class Target:
    r: Resource
    ns: str | None
    name: str
    sub: str


def resolve(reg: Registry, group: str, version: str, rest: list[str]) -> Target:
    def find(plural: str) -> Resource:
        res = reg.lookup(group, version, plural)
        if res is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return res

    n = len(rest)
    if n >= 3 and rest[0] == "namespaces" and not (n == 3 and rest[2] in ("status", "finalize")):
        r = find(rest[2])
        if not r.namespaced:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        t = Target(r, rest[1], rest[3] if n > 3 else "", rest[4] if n > 4 else "")
    elif n >= 1:
        r = find(rest[0])
        t = Target(r, None, rest[1] if n > 1 else "", rest[2] if n > 2 else "")
    else:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    if t.sub and t.sub not in t.r.subresources:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    if n > 5 or (t.ns is None and n > 3):
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    return t


class ResourceHandlers:
    def __init__(self, reg: Registry, ostore: ObjectStore, after_large: Callable[[], None] = lambda: None):
        self.reg = reg
        self.ostore = ostore
        self.after_large = after_large  # called after requests that touched many objects
        self.proxy: Any = None  # proxy.KubeletProxy: pods/log|exec|attach|portforward, nodes/proxy

    # ---- dispatch ----------------------------------------------------------
    async def handle(self, request: web.Request, group: str, version: str, rest: list[str]) -> web.StreamResponse:
        if (self.proxy is not None and not group and len(rest) > 3 and rest[0] == "nodes"
                and rest[2] == "proxy"):  # nodes/{name}/proxy/{path...}
            return await self.proxy.handle(request, resolve(self.reg, group, version, rest[:3]), rest[3:])
        t = resolve(self.reg, group, version, rest)
        if self.proxy is not None and t.name and (t.sub in ("log", "exec", "attach", "portforward")
                                                  or (t.sub == "proxy" and t.r.kind == "Node")):
            return await self.proxy.handle(request, t, [])
        m = request.method
        q = request.query
        if t.r.kind == "Namespace" and t.ns is None and len(rest) == 3:
            t = Target(t.r, None, rest[1], rest[2])
        if not t.name:
            if m == "GET":
                if q.get("watch") in ("true", "1"):
                    return await self.watch(request, t)
                return await self.list(request, t)
            if m == "POST":
                return await self.create(request, t)
            if m == "DELETE":
                return await self.delete_collection(request, t)
            raise errors.method_not_allowed()
        if t.sub in ("", "status", "finalize"):
            if m == "GET":
                acc = parse_accept(request.headers.get("Accept"))
                if not acc.as_kind and acc.media != YAML and not conversion.needs_conversion(t.r):
                    e = await self.ostore.get_cached(t.r, t.ns, t.name, q.get("resourceVersion", ""))
                    if e is not None:  # the cached bytes are the answer
                        return web.Response(body=e.raw, content_type="application/json")
                obj = await self.ostore.get(t.r, t.ns, t.name, q.get("resourceVersion", ""))
                return self.respond(request, t.r, obj)
            if m == "PUT":
                return await self.update(request, t)
            if m == "PATCH":
                return await self.patch(request, t)
            if m == "DELETE" and not t.sub:
                return await self.delete(request, t)
            raise errors.method_not_allowed()
        if t.sub == "scale":
            return await scale.handle(self, request, t)
        if t.sub == "binding" and m == "POST":
            return await scale.bind(self, request, t)
        if t.sub == "eviction" and m == "POST":
            return await scale.evict(self, request, t)
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")

    # ---- helpers -------------------------------------------------------------
    def write_options(self, request: web.Request) -> WriteOptions:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{d}": supported values: "All"')
        fv = q.get("fieldValidation", "")
        if fv not in ("", "Ignore", "Warn", "Strict"):
            raise errors.bad_request(f'fieldValidation: Unsupported value: "{fv}": supported values: '
                                     f'"Ignore", "Strict", "Warn"')
        fm = q.get("fieldManager", "")
        if len(fm) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return WriteOptions(dry_run=bool(dry), field_manager=fm, user_agent=request.headers.get("User-Agent", ""),
                            force=q.get("force") in ("true", "1"))

    def check_fields(self, request: web.Request, r: Resource, obj: dict[str, Any], opts: WriteOptions) -> None:
        mode = request.query.get("fieldValidation", "Warn")
        if mode == "Ignore":
            return
        from ..api import schema
        sch = schema.load()
        type_name = sch.type_for_kind(r.group, r.version, r.kind)
        if not type_name:
            return
        errs = sch.strict_errors(type_name, obj)
        if not errs:
            return
        if mode == "Strict":
            raise errors.bad_request(f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: '
                                     f'strict decoding error: ' + ", ".join(errs))
        opts.warnings.extend(errs)

    async def read_body(self, request: web.Request) -> Any:
        if request.content_length is not None and request.content_length > 3 * 1024 * 1024:
            raise errors.too_large()
        body = await request.read()
        return decode_body(request.headers.get("Content-Type", ""), body)

    def check_object(self, r: Resource, obj: Any, ns: str | None, expect_kind: str | None = None,
                     api_version: str | None = None) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body of the request could not be decoded as a {r.kind}: "
                                     f"expected a JSON object")
        kind = expect_kind or r.kind
        av = api_version or r.api_version
        if obj.get("kind") and obj["kind"] != kind:
            raise errors.bad_request(f"the kind in the body ({obj['kind']}) does not match the expected kind "
                                     f"({kind}) for {r.plural}")
        if obj.get("apiVersion") and obj["apiVersion"] != av:
            raise errors.bad_request(f"the API version in the data ({obj['apiVersion']}) does not match the "
                                     f"expected API version ({av})")
        obj["kind"], obj["apiVersion"] = kind, av
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        if r.namespaced and ns is not None:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            md["namespace"] = ns
        elif not r.namespaced:
            md.pop("namespace", None)
        return obj

    def respond(self, request: web.Request, r: Resource, obj: dict[str, Any], status: int = 200,
                opts: WriteOptions | None = None) -> web.Response:
        acc = parse_accept(request.headers.get("Accept"))
        if acc.as_kind == "Table":
            body: Any = tables.table(r, [obj], time.time(), request.query.get("includeObject", "Metadata"),
                                     {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")},
                                     table_version=acc.as_version)
        elif acc.as_kind == "PartialObjectMetadata":
            body = partial_metadata(obj, acc.as_version)
        else:
            body = obj
        return self.send(body, acc, status, opts)

    def send(self, body: Any, acc: Accept, status: int = 200, opts: WriteOptions | None = None) -> web.Response:
        headers = {}
        if opts and opts.warnings:
            headers["Warning"] = ", ".join(f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"'
                                           for w in opts.warnings)
        if acc.media == YAML:
            return web.Response(body=to_yaml(body), status=status, content_type="application/yaml",
                                headers=headers)
        raw = body if isinstance(body, bytes) else dumps(body)
        return web.Response(body=raw, status=status, content_type="application/json", headers=headers)

    def matcher(self, r: Resource, ns: str | None, q: Any,
                by_namespace: bool = False) -> Callable[[Entry], bool] | None:
        """A filter for cache entries; None when nothing filters. Lists come
        from a namespace's own key range, so only watches filter by it."""
        if not by_namespace:
            ns = None
        ls = q.get("labelSelector", "")
        fs = q.get("fieldSelector", "")
        try:
            sel = labels.parse(ls) if ls else None
        except labels.SelectorError as e:
            raise errors.bad_request(str(e))
        try:
            fm = fieldselectors.compile(self.reg.storage_resource(r), fs) if fs else None
        except fieldselectors.FieldSelectorError as e:
            raise errors.bad_request(str(e))
        if sel is None and fm is None and not ns:
            return None

        def match(e: Entry) -> bool:
            if ns and e.namespace != ns:
                return False
            if sel is not None and not sel.matches(e.labels):
                return False
            if fm is not None and not fm(e.fields or {}):
                return False
            return True

        return match

    # ---- verbs --------------------------------------------------------------
    async def list(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise errors.bad_request("invalid limit") from None
        match = self.matcher(t.r, t.ns, q)
        res = await self.ostore.list(t.r, t.ns, match, max(limit, 0), q.get("continue", ""), q.get("resourceVersion", ""),
                                     q.get("resourceVersionMatch", ""))
        acc = parse_accept(request.headers.get("Accept"))
        list_meta: dict[str, Any] = {"resourceVersion": str(res.revision)}
        if res.continue_token:
            list_meta["continue"] = res.continue_token
            if res.remaining is not None:
                list_meta["remainingItemCount"] = res.remaining
        r = t.r
        if len(res.entries) > 1000:
            self.after_large()
        if acc.as_kind == "Table":
            # rows are made a chunk at a time so that a large list never holds
            # every decoded object at once
            now, include, entries = time.time(), q.get("includeObject", "Metadata"), res.entries
            table = tables.table(r, [self.ostore.entry_obj(r, e) for e in entries[:500]], now, include,
                                 list_meta, table_version=acc.as_version)
            rows = table.get("rows") or []
            for i in range(500, len(entries), 500):
                chunk = [self.ostore.entry_obj(r, e) for e in entries[i:i + 500]]
                rows.extend(tables.table(r, chunk, now, include, list_meta, no_headers=True,
                                         table_version=acc.as_version).get("rows") or [])
            if rows:
                table["rows"] = rows
            return self.send(table, acc)
        if acc.as_kind in ("PartialObjectMetadataList", "PartialObjectMetadata"):
            items = [partial_metadata(orjson.loads(e.raw), acc.as_version) for e in res.entries]
            return self.send({"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{acc.as_version}",
                              "metadata": list_meta, "items": items}, acc)
        if acc.media == YAML or conversion.needs_conversion(r):
            items = [self.ostore.entry_obj(r, e) for e in res.entries]
            return self.send({"kind": r.list_kind, "apiVersion": r.api_version, "metadata": list_meta,
                              "items": items}, acc)
        head = dumps({"kind": r.list_kind, "apiVersion": r.api_version, "metadata": list_meta})
        body = head[:-1] + b',"items":[' + b",".join(e.raw for e in res.entries) + b"]}"
        return web.Response(body=body, content_type="application/json")

    async def watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        match = self.matcher(t.r, t.ns, q, by_namespace=True) or _all
        acc = parse_accept(request.headers.get("Accept"))
        r = t.r
        include = q.get("includeObject", "Metadata")
        if acc.as_kind == "Table":
            tables.validate_include_object(include)
            first = [True]

            def render(e: Entry) -> bytes:
                obj = self.ostore.entry_obj(r, e)
                t = tables.table(r, [obj], time.time(), include,
                                 {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                 no_headers=not first[0], table_version=acc.as_version)
                first[0] = False
                return dumps(t)
        elif acc.as_kind.startswith("PartialObjectMetadata"):
            def render(e: Entry) -> bytes:
                return dumps(partial_metadata(orjson.loads(e.raw), acc.as_version))
        elif conversion.needs_conversion(r):
            def render(e: Entry) -> bytes:
                return dumps(self.ostore.entry_obj(r, e))
        else:
            def render(e: Entry) -> bytes:
                return e.raw
        return await watch.serve(request, self.ostore, r, t.ns, match, render, q)

    async def create(self, request: web.Request, t: Target) -> web.Response:
        if t.r.verbs and "create" not in t.r.verbs:
            raise errors.method_not_allowed()
        if t.r.namespaced and t.ns is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        opts = self.write_options(request)
        obj = self.check_object(t.r, await self.read_body(request), t.ns)
        if t.r.kind == "Binding":
            return await scale.bind(self, request, t, obj)
        self.check_fields(request, t.r, obj, opts)
        out = await self.ostore.create(t.r, t.ns, obj, opts)
        return self.respond(request, t.r, out, 201, opts)

    async def update(self, request: web.Request, t: Target) -> web.Response:
        opts = self.write_options(request)
        obj = self.check_object(t.r, await self.read_body(request), t.ns)
        self.check_fields(request, t.r, obj, opts)
        sub = t.sub if t.sub in ("status", "finalize") else ""
        out = await self.ostore.update(t.r, t.ns, t.name, obj, opts, sub)
        return self.respond(request, t.r, out, 200, opts)

    async def patch(self, request: web.Request, t: Target) -> web.Response:
        from . import patching
        out, status, opts = await patching.patch(self, request, t)
        return self.respond(request, t.r, out, status, opts)

    async def delete(self, request: web.Request, t: Target) -> web.Response:
        opts = self.write_options(request)
        options = await self.delete_options(request)
        obj, removed = await self.ostore.delete(t.r, t.ns, t.name, options, opts)
        return self.respond(request, t.r, obj, 200)

    async def delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            body = await request.read()
            if body.strip():
                d = decode_body(request.headers.get("Content-Type", ""), body)
                if not isinstance(d, dict):
                    raise errors.bad_request("DeleteOptions must be an object")
                options = d
        q = request.query
        if "gracePeriodSeconds" in q:
            try:
                options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError:
                raise errors.bad_request("invalid gracePeriodSeconds") from None
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            options["orphanDependents"] = q["orphanDependents"] == "true"
        if q.getall("dryRun", []):
            options["dryRun"] = q.getall("dryRun")
        return options

    async def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        if "deletecollection" not in t.r.verbs:
            raise errors.method_not_allowed()
        opts = self.write_options(request)
        options = await self.delete_options(request)
        match = self.matcher(t.r, t.ns, request.query)
        res: ListResult = await self.ostore.list(t.r, t.ns, match, 0, "", "", "")
        items = []
        for e in res.entries:
            try:
                obj, _ = await self.ostore.delete(t.r, e.namespace or None, e.name, options, opts)
                items.append(obj)
            except errors.APIError as err:
                if err.code != 404:
                    raise
        acc = parse_accept(request.headers.get("Accept"))
        return self.send({"kind": t.r.list_kind, "apiVersion": t.r.api_version,
                          "metadata": {"resourceVersion": str(self.ostore.caches.rev)}, "items": items}, acc)


def _all(e: Entry) -> bool:
    return True
