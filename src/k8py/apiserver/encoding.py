"""Request bodies in, responses out: JSON, YAML and protobuf bodies;
JSON, YAML, Table and PartialObjectMetadata responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from . import errors

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def decode_body(content_type: str, body: bytes) -> Any:
    ct = (content_type or JSON).split(";")[0].strip().lower()
    if len(body) > MAX_BODY:
        raise errors.too_large()
    if ct in (JSON, "", "*/*"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    if ct in (YAML, "application/x-yaml", "text/yaml"):
        try:
            docs = [d for d in yaml.safe_load_all(body) if d is not None]
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None
        if len(docs) != 1:
            raise errors.bad_request("the body must contain exactly one YAML document")
        return _jsonable(docs[0])
    if ct == PROTOBUF:
        from ..api import protobuf
        try:
            return protobuf.decode(body)
        except protobuf.ProtobufError as e:
            raise errors.bad_request(str(e)) from None
    raise errors.unsupported_media_type(ct)


def _jsonable(v: Any) -> Any:
    """YAML may produce dates and non-string keys; make it JSON's shape."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


@dataclass(frozen=True, slots=True)
class Accept:
    """What the client asked for: plain objects (JSON/YAML), a Table, or
    PartialObjectMetadata(List)."""

    media: str = JSON  # JSON or YAML
    as_kind: str = ""  # "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    as_version: str = "v1"


_DEFAULT_ACCEPT = Accept()


_ACCEPTS: dict[str, Accept] = {}


def parse_accept(header: str | None) -> Accept:
    if not header:
        return _DEFAULT_ACCEPT
    got = _ACCEPTS.get(header)
    if got is None:  # clients send the same few Accept headers on every request
        got = _parse_accept(header)
        if len(_ACCEPTS) > 256:
            _ACCEPTS.clear()
        _ACCEPTS[header] = got
    return got


def _parse_accept(header: str) -> Accept:
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if media in (JSON, "*/*", "application/*") and "as" in params:
            if params.get("g") == "meta.k8s.io" and params["as"] in ("Table", "PartialObjectMetadata",
                                                                     "PartialObjectMetadataList"):
                if params.get("v", "v1") in ("v1", "v1beta1"):
                    return Accept(JSON, params["as"], params.get("v", "v1"))
            continue
        if media in (JSON, "*/*", "application/*", PROTOBUF):
            return Accept(JSON)
        if media in (YAML,):
            return Accept(YAML)
    for part in header.split(","):
        media = part.split(";")[0].strip().lower()
        if media in (JSON, "*/*", "application/*", PROTOBUF, YAML) or media.startswith("application/json"):
            return Accept(JSON)
    raise errors.not_acceptable(header)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def to_yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).encode()


def partial_metadata(obj: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata") or {}}
