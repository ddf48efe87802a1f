"""Kubernetes-style API errors: every failure is a ``metav1.Status`` whose
``code`` is the HTTP status of the response."""

from __future__ import annotations

from typing import Any

from ..api.status import failure_status


class APIError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return failure_status(self.message, self.code, self.reason, self.details or None)


def from_status(st: dict[str, Any]) -> APIError:
    """An APIError that answers with exactly this Status."""
    return APIError(int(st.get("code") or 500), st.get("reason", ""), st.get("message", ""), st.get("details"))


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    d.update(extra)
    return d


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str) -> APIError:
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    _details(name, group, resource))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, group: str, name: str, message: str, causes: list[dict[str, Any]]) -> APIError:
    return APIError(422, "Invalid", message, _details(name, group, kind, causes=causes))


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def forbidden(resource: str, group: str, name: str, why: str) -> APIError:
    q = _qualified(resource, group)
    what = f'{q} "{name}"' if name else q
    return APIError(403, "Forbidden", f"{what} is forbidden: {why}", _details(name, group, resource))


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def expired(message: str) -> APIError:
    return APIError(410, "Expired", message)


def gone_too_old(rv: int | str) -> APIError:
    return APIError(410, "Expired", f"too old resource version: {rv}")


def too_large() -> APIError:
    return APIError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                    f'accepted media types include: application/json, application/yaml, '
                    f'application/vnd.kubernetes.protobuf')


def not_acceptable(accept: str) -> APIError:
    return APIError(406, "NotAcceptable", f"only the following media types are accepted: "
                    f"application/json, application/yaml, application/vnd.kubernetes.protobuf")


def too_many_requests(message: str, retry_after: int = 0) -> APIError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return APIError(429, "TooManyRequests", message, headers=headers)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")
