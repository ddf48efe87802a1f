"""Validation of API objects, as kube-apiserver's strategies do it.

Public API (what the API server calls)::

    validate(resource, obj, old=None) -> list[FieldError]       # create (old None) / update
    validate_status(resource, obj, old) -> list[FieldError]     # status-subresource writes
    validate_ephemeral_containers(resource, obj, old)            # pods/ephemeralcontainers writes
    invalid_message(kind, name, errors, group="") -> str        # Status.message of a 422
    invalid_status(kind, name, errors, group="") -> dict        # the whole 422 Status body

Objects are the JSON dicts received over the wire, already defaulted
(:func:`k8py.api.defaults.apply_defaults`) and, for create, with the name
generated and ``metadata.uid``/``creationTimestamp`` filled.  For updates the
new object must carry ``metadata.resourceVersion`` (kube fills it in for
unconditional updates before validating).

Kind-specific rules live in ``validation_pod`` (with ``validation_container``,
``validation_volumes`` and ``validation_resources``), ``validation_core``,
``validation_service``, ``validation_apps``, ``validation_batch``,
``validation_networking`` and ``validation_other``; the shared machinery
(field errors, Go formatting, names, metadata) in ``validation_common``.

Input that is ill-typed JSON (a string where kube has a struct, ...) is
reported as field errors, never raised; should a validator still trip over
it, the result is a single ``InternalError`` field error (still a 422).
"""

from __future__ import annotations

from typing import Any, Callable

from k8py.api import validation_apps as _apps
from k8py.api import validation_batch as _batch
from k8py.api import validation_core as _core
from k8py.api import validation_networking as _net
from k8py.api import validation_other as _other
from k8py.api import validation_pod as _vpod
from k8py.api import validation_service as _svc
from k8py.api.validation_common import (
    DUPLICATE, FORBIDDEN, INVALID, NOT_FOUND, NOT_SUPPORTED, REQUIRED, TOO_LONG, TOO_MANY, TYPE_INVALID, FieldError,
    GoRepr, internal_error, path_segment_name, validate_object_meta, validate_object_meta_update,
)

__all__ = [
    "DUPLICATE", "FORBIDDEN", "INVALID", "NOT_FOUND", "NOT_SUPPORTED", "REQUIRED", "TOO_LONG", "TOO_MANY",
    "TYPE_INVALID", "FieldError", "GoRepr", "aggregate_message", "invalid_message", "invalid_status", "validate",
    "validate_ephemeral_containers", "validate_status",
]

Validator = Callable[[dict, "dict | None", list], None]


def _pod(obj: dict, old: dict | None, errs: list) -> None:
    if old is None:
        _vpod.validate_pod(obj, errs)
    else:
        _vpod.validate_pod_update(obj, old, errs)


def _binding(obj: dict, old: dict | None, errs: list) -> None:
    _vpod.validate_binding(obj, errs)


def _with(fn: Callable[..., None], **kw: Any) -> Validator:
    def v(obj: dict, old: dict | None, errs: list) -> None:
        fn(obj, old, errs, **kw)
    return v


# (group, kind) -> validator(obj, old, errs)
_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _pod,
    ("", "Binding"): _binding,
    ("", "Service"): _svc.validate_service,
    ("", "ConfigMap"): _core.validate_configmap,
    ("", "Secret"): _core.validate_secret,
    ("", "ServiceAccount"): _core.validate_service_account,
    ("", "Namespace"): _core.validate_namespace,
    ("", "Node"): _core.validate_node,
    ("", "Endpoints"): _svc.validate_endpoints,
    ("", "PersistentVolume"): _core.validate_pv,
    ("", "PersistentVolumeClaim"): _core.validate_pvc,
    ("", "ResourceQuota"): _core.validate_resource_quota,
    ("", "LimitRange"): _core.validate_limit_range,
    ("", "ReplicationController"): _core.validate_replication_controller,
    ("", "PodTemplate"): _core.validate_pod_template,
    ("", "Event"): _core.validate_core_event,
    ("apps", "Deployment"): _apps.validate_deployment,
    ("apps", "ReplicaSet"): _apps.validate_replicaset,
    ("apps", "StatefulSet"): _apps.validate_statefulset,
    ("apps", "DaemonSet"): _apps.validate_daemonset,
    ("apps", "ControllerRevision"): _apps.validate_controller_revision,
    ("batch", "Job"): _batch.validate_job,
    ("batch", "CronJob"): _batch.validate_cronjob,
    ("networking.k8s.io", "Ingress"): _net.validate_ingress,
    ("networking.k8s.io", "IngressClass"): _net.validate_ingress_class,
    ("networking.k8s.io", "NetworkPolicy"): _net.validate_network_policy,
    ("policy", "PodDisruptionBudget"): _other.validate_pdb,
    ("rbac.authorization.k8s.io", "Role"): _with(_other.validate_role, namespaced=True),
    ("rbac.authorization.k8s.io", "ClusterRole"): _with(_other.validate_role, namespaced=False),
    ("rbac.authorization.k8s.io", "RoleBinding"): _with(_other.validate_role_binding, namespaced=True),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _with(_other.validate_role_binding, namespaced=False),
    ("storage.k8s.io", "StorageClass"): _other.validate_storage_class,
    ("scheduling.k8s.io", "PriorityClass"): _other.validate_priority_class,
    ("coordination.k8s.io", "Lease"): _other.validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): _net.validate_endpoint_slice,
    ("events.k8s.io", "Event"): _other.validate_events_v1_event,
}

# status-subresource validators: (obj, old, errs)
_STATUS_VALIDATORS: dict[tuple[str, str], Callable[[dict, dict, list], None]] = {
    ("", "Pod"): _vpod.validate_pod_status_update,
    ("", "Service"): _svc.validate_service_status,
    ("", "Namespace"): _core.validate_namespace_status,
    ("", "ReplicationController"): _core.validate_replication_controller_status,
    ("", "ResourceQuota"): _core.validate_resource_quota_status,
    ("apps", "Deployment"): _apps.validate_deployment_status,
    ("apps", "ReplicaSet"): _apps.validate_replicaset_status,
    ("apps", "StatefulSet"): _apps.validate_statefulset_status,
    ("apps", "DaemonSet"): _apps.validate_daemonset_status,
    ("batch", "Job"): _batch.validate_job_status,
    ("autoscaling", "HorizontalPodAutoscaler"): _other.validate_hpa_status,
    ("networking.k8s.io", "Ingress"): _net.validate_ingress_status,
    ("policy", "PodDisruptionBudget"): _other.validate_pdb_status,
}

# kinds whose own validation does not check ObjectMeta on create: kube's generic
# rest.BeforeCreate then validates it with path-segment name rules.
_GENERIC_META_ONLY = frozenset({("", "Event"), ("policy", "PodDisruptionBudget")})


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    if len(errs) < 2:
        return errs
    seen: set[str] = set()
    out = []
    for e in errs:
        m = e.message()
        if m not in seen:
            seen.add(m)
            out.append(e)
    return out


def _malformed(e: Exception) -> FieldError:
    """Last-resort error for input so ill-typed that a validator tripped over it (kube rejects such
    bodies while decoding); the fuzz tests keep this path unused for every node of realistic objects."""
    return internal_error("", f"malformed object: {type(e).__name__}: {e}")


def _namespaced(resource: Any) -> bool:
    return bool(getattr(resource, "namespaced", True))


def validate(resource: Any, obj: dict, old: dict | None = None) -> list[FieldError]:
    """Field errors for creating ``obj`` (``old is None``) or updating ``old`` to ``obj``.

    ``resource`` is a registry :class:`~k8py.api.registry.Resource` (group, version, kind, namespaced).
    Kinds without specific rules get kube's generic metadata validation only.
    """
    key = (resource.group, resource.kind)
    errs: list[FieldError] = []
    namespaced = _namespaced(resource)
    if old is not None:
        # rest.BeforeUpdate's validateCommonFields, before the strategy's ValidateUpdate
        validate_object_meta(obj.get("metadata"), namespaced, path_segment_name, errs, kube_finalizers=False)
        validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs, kube_finalizers=False)
    try:
        if key == ("autoscaling", "HorizontalPodAutoscaler"):
            _other.validate_hpa(obj, old, errs, resource.version)
        else:
            fn = _VALIDATORS.get(key)
            if fn is not None:
                fn(obj, old, errs)
            elif old is None:
                validate_object_meta(obj.get("metadata"), namespaced, path_segment_name, errs, kube_finalizers=False)
    except Exception as e:  # noqa: BLE001 - malformed input must give a 422, never a 500
        errs.append(_malformed(e))
    if old is None and key in _GENERIC_META_ONLY and not errs:
        validate_object_meta(obj.get("metadata"), namespaced, path_segment_name, errs, kube_finalizers=False)
    return _dedupe(errs)


def validate_status(resource: Any, obj: dict, old: dict) -> list[FieldError]:
    """Field errors for a write to the ``status`` subresource (metadata rules plus light status checks)."""
    errs: list[FieldError] = []
    validate_object_meta(obj.get("metadata"), _namespaced(resource), path_segment_name, errs, kube_finalizers=False)
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs, kube_finalizers=False)
    fn = _STATUS_VALIDATORS.get((resource.group, resource.kind))
    if fn is not None:
        try:
            fn(obj, old, errs)
        except Exception as e:  # noqa: BLE001
            errs.append(_malformed(e))
    return _dedupe(errs)


def validate_ephemeral_containers(resource: Any, obj: dict, old: dict) -> list[FieldError]:
    """Field errors for a write to ``pods/ephemeralcontainers``.

    ``obj`` must be the stored pod ``old`` with only ``spec.ephemeralContainers`` replaced by the
    request's (and defaulted), as kube's strategy does before validating.
    """
    errs: list[FieldError] = []
    validate_object_meta(obj.get("metadata"), _namespaced(resource), path_segment_name, errs, kube_finalizers=False)
    validate_object_meta_update(obj.get("metadata"), old.get("metadata"), errs, kube_finalizers=False)
    try:
        _vpod.validate_pod_ephemeral_containers_update(obj, old, errs)
    except Exception as e:  # noqa: BLE001
        errs.append(_malformed(e))
    return _dedupe(errs)


def aggregate_message(errors: list[FieldError]) -> str:
    """kube ``ErrorList.ToAggregate().Error()``: one message, or ``[a, b]`` (duplicates dropped)."""
    msgs: list[str] = []
    seen: set[str] = set()
    for e in errors:
        m = e.message()
        if m not in seen:
            seen.add(m)
            msgs.append(m)
    if not msgs:
        return ""
    if len(msgs) == 1:
        return msgs[0]
    return "[" + ", ".join(msgs) + "]"


def _qualified_kind(kind: Any, group: str) -> tuple[str, str, str]:
    """(qualified, kind, group) from a kind string ('Pod', 'Deployment.apps') or a Resource."""
    if hasattr(kind, "kind") and hasattr(kind, "group"):
        group = kind.group
        kind = kind.kind
    kind = str(kind)
    if not group and "." in kind:
        kind, _, group = kind.partition(".")
    return (f"{kind}.{group}" if group else kind), kind, group


def invalid_message(kind: Any, name: str, errors: list[FieldError], group: str = "") -> str:
    """kube's 422 message: ``Pod "x" is invalid: spec...: Required value`` (``Deployment.apps "x" ...``).

    ``kind`` may be a plain kind, a qualified ``Kind.group``, or a registry Resource.
    """
    qualified, _, _ = _qualified_kind(kind, group)
    agg = aggregate_message(errors)
    name_q = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if not agg:
        return f"{qualified} {name_q} is invalid"
    return f"{qualified} {name_q} is invalid: {agg}"


def invalid_status(kind: Any, name: str, errors: list[FieldError], group: str = "") -> dict:
    """The whole ``metav1.Status`` body kube returns with HTTP 422 (``errors.NewInvalid``)."""
    _, k, g = _qualified_kind(kind, group)
    details: dict[str, Any] = {"name": name, "group": g, "kind": k,
                               "causes": [e.cause() for e in errors]}
    if not g:
        del details["group"]
    if not name:
        del details["name"]
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": invalid_message(kind, name, errors, group), "reason": "Invalid",
        "details": details, "code": 422,
    }

