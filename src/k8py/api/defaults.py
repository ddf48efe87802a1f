"""Defaulting, as kube's generated ``SetObjectDefaults_*`` functions do on every decode.

:func:`apply_defaults` mutates a JSON object in place according to its
registry :class:`~k8py.api.registry.Resource` (group/version/kind).  Besides
the ``SetDefaults_*`` rules it canonicalizes resource quantities the way a
Go decode/encode round trip does (``0.5`` -> ``500m``, ``1024Mi`` -> ``1Gi``),
rounding ResourceList values up to milli-units (``SetDefaults_ResourceList``).
A malformed quantity raises :class:`k8py.api.quantity.QuantityError`, which
kube reports as a 400 decode error
(``<Kind> in version "<v>" cannot be handled as a <Kind>: <message>``).

Create-time strategy/admission mutations that are not defaulting live in
separate functions: :func:`job_prepare_create` (generated selector and
labels), :func:`namespace_prepare_create` (the ``kubernetes`` finalizer),
:func:`pod_admission_defaults` (DefaultTolerationSeconds and Priority
admission) and :func:`pod_prepare_create` (initial status).

Secrets' ``stringData`` is merged into ``data`` here, as kube's v1 -> internal
conversion does before anything else sees the object.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Callable

from k8py.api import quantity as _q

__all__ = [
    "DecodeError", "apply_defaults", "canonical_resource_list", "image_pull_policy", "job_prepare_create",
    "namespace_prepare_create", "pod_admission_defaults", "pod_prepare_create", "pod_qos_class",
]

DecodeError = _q.QuantityError

_VOLUME_SOURCE_KEYS = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc",
    "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk",
    "storageos", "projected", "scaleIO", "csi", "ephemeral", "image",
)
_MILLI_STEP = 1_000_000  # nanos per milli


def _lst(v: Any) -> Any:
    """``v`` if it is a list, else an empty tuple (ill-typed input is left to validation)."""
    return v if isinstance(v, list) else ()


def _dct(v: Any) -> dict:
    """``v`` if it is a dict, else an empty dict (ill-typed input is left to validation)."""
    return v if isinstance(v, dict) else {}


# --- quantities ---------------------------------------------------------------------------------------
_CANON_CACHE: dict[str, str] = {}


def _canon_quantity(v: Any) -> str:
    """A ResourceList value rounded up to milli, canonical (raises QuantityError)."""
    if type(v) is str:
        s = _CANON_CACHE.get(v)
        if s is not None:  # the same few quantities come again and again
            return s
    q = _q.parse(v)
    if q.nanos % _MILLI_STEP:
        q.round_up(-3)
    s = str(q)
    if type(v) is str:
        if len(_CANON_CACHE) > 4096:
            _CANON_CACHE.clear()
        _CANON_CACHE[v] = s
    return s


def _canon_rl(rl: Any) -> None:
    """SetDefaults_ResourceList: round up to milli and canonicalize, in place."""
    if not isinstance(rl, dict):
        return
    for k, v in rl.items():
        s = _canon_quantity(v)
        if s != v:
            rl[k] = s


def canonical_resource_list(rl: dict) -> dict:
    """A copy of a ResourceList with kube's canonical quantity strings (rounded up to milli)."""
    out = dict(rl)
    _canon_rl(out)
    return out


def _canon_q(d: dict, key: str) -> None:
    v = d.get(key)
    if v is not None:
        s = _q.canonicalize(v)
        if s != v:
            d[key] = s


# --- image pull policy ----------------------------------------------------------------------------------
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE_RE = re.compile(
    rf"((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::([\w][\w.-]{0,127}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?\Z")


_PULL_POLICIES: dict[str, str] = {}


def image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or untagged images (no digest), else ``IfNotPresent`` (kube's rule)."""
    if not isinstance(image, str) or not image:
        return "IfNotPresent"
    got = _PULL_POLICIES.get(image)
    if got is None:  # a cluster runs few distinct images
        if len(_PULL_POLICIES) > 4096:
            _PULL_POLICIES.clear()
        got = _PULL_POLICIES[image] = _image_pull_policy(image)
    return got


def _image_pull_policy(image: str) -> str:
    m = _REFERENCE_RE.match(image)
    if m is None or len(m.group(1)) > 255:
        return "IfNotPresent"
    tag, digest = m.group(2), m.group(3)
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


# --- pod spec ---------------------------------------------------------------------------------------
def _http_get(h: Any) -> None:
    if isinstance(h, dict):
        g = h.get("httpGet")
        if isinstance(g, dict):
            if not g.get("path"):
                g["path"] = "/"
            if not g.get("scheme"):
                g["scheme"] = "HTTP"


def _probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    if not p.get("timeoutSeconds"):
        p["timeoutSeconds"] = 1
    if not p.get("periodSeconds"):
        p["periodSeconds"] = 10
    if not p.get("successThreshold"):
        p["successThreshold"] = 1
    if not p.get("failureThreshold"):
        p["failureThreshold"] = 3
    _http_get(p)
    grpc = p.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _field_refs(item: dict) -> None:
    fr = item.get("fieldRef")
    if isinstance(fr, dict) and not fr.get("apiVersion"):
        fr["apiVersion"] = "v1"
    rfr = item.get("resourceFieldRef")
    if isinstance(rfr, dict):
        if rfr.get("divisor") is None:
            rfr["divisor"] = "0"
        else:
            _canon_q(rfr, "divisor")


def _container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(c.get("image", ""))
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    ports = c.get("ports")
    if isinstance(ports, list):
        for p in ports:
            if isinstance(p, dict) and not p.get("protocol"):
                p["protocol"] = "TCP"
    env = c.get("env")
    if isinstance(env, list):
        for e in env:
            if isinstance(e, dict):
                vf = e.get("valueFrom")
                if isinstance(vf, dict):
                    _field_refs(vf)
    res = c.get("resources")
    if res is None:
        c["resources"] = {}
    elif isinstance(res, dict):
        if res.get("limits"):
            _canon_rl(res["limits"])
        if res.get("requests"):
            _canon_rl(res["requests"])
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(key)
        if p is not None:
            _probe(p)
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        _http_get(lc.get("postStart"))
        _http_get(lc.get("preStop"))


def _pvc_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    res = spec.get("resources")
    if isinstance(res, dict):
        if res.get("limits"):
            _canon_rl(res["limits"])
        if res.get("requests"):
            _canon_rl(res["requests"])


def _volume(v: Any) -> None:
    if not isinstance(v, dict):
        return
    found = False
    for key in _VOLUME_SOURCE_KEYS:
        src = v.get(key)
        if src is None:
            continue
        found = True
        if not isinstance(src, dict):
            continue
        if key in ("secret", "configMap", "downwardAPI", "projected"):
            if src.get("defaultMode") is None:
                src["defaultMode"] = 420
            if key == "downwardAPI":
                for item in _lst(src.get("items")):
                    if isinstance(item, dict):
                        _field_refs(item)
            elif key == "projected":
                for s in _lst(src.get("sources")):
                    if not isinstance(s, dict):
                        continue
                    sat = s.get("serviceAccountToken")
                    if isinstance(sat, dict) and sat.get("expirationSeconds") is None:
                        sat["expirationSeconds"] = 3600
                    dapi = s.get("downwardAPI")
                    if isinstance(dapi, dict):
                        for item in _lst(dapi.get("items")):
                            if isinstance(item, dict):
                                _field_refs(item)
        elif key == "hostPath":
            if src.get("type") is None:
                src["type"] = ""
        elif key == "emptyDir":
            _canon_q(src, "sizeLimit")
        elif key == "iscsi":
            if not src.get("iscsiInterface"):
                src["iscsiInterface"] = "default"
        elif key == "rbd":
            if not src.get("pool"):
                src["pool"] = "rbd"
            if not src.get("user"):
                src["user"] = "admin"
            if not src.get("keyring"):
                src["keyring"] = "/etc/ceph/keyring"
        elif key == "azureDisk":
            if src.get("cachingMode") is None:
                src["cachingMode"] = "ReadWrite"
            if src.get("kind") is None:
                src["kind"] = "Shared"
            if src.get("fsType") is None:
                src["fsType"] = "ext4"
            if src.get("readOnly") is None:
                src["readOnly"] = False
        elif key == "scaleIO":
            if not src.get("storageMode"):
                src["storageMode"] = "ThinProvisioned"
            if not src.get("fsType"):
                src["fsType"] = "xfs"
        elif key == "ephemeral":
            vct = src.get("volumeClaimTemplate")
            if isinstance(vct, dict):
                _pvc_spec(vct.get("spec"))
    if not found:
        v["emptyDir"] = {}


def _pod_spec(spec: Any) -> None:
    """SetDefaults_PodSpec plus the nested container/volume/probe defaulters."""
    if not isinstance(spec, dict):
        return
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    vols = spec.get("volumes")
    if isinstance(vols, list):
        for v in vols:
            _volume(v)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        cs = spec.get(key)
        if isinstance(cs, list):
            for c in cs:
                _container(c)
    if spec.get("overhead"):
        _canon_rl(spec["overhead"])
    pr = spec.get("resources")
    if isinstance(pr, dict):
        if pr.get("limits"):
            _canon_rl(pr["limits"])
        if pr.get("requests"):
            _canon_rl(pr["requests"])


def _template(tmpl: Any) -> None:
    if isinstance(tmpl, dict):
        spec = tmpl.get("spec")
        if spec is None:
            spec = tmpl["spec"] = {}
        _pod_spec(spec)


def _pod(obj: dict, version: str) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    # SetDefaults_Pod: requests default to limits (containers and init containers only)
    for key in ("containers", "initContainers"):
        for c in _lst(spec.get(key)):
            if not isinstance(c, dict):
                continue
            res = c.get("resources")
            if isinstance(res, dict):
                limits = res.get("limits")
                if isinstance(limits, dict):
                    req = res.get("requests")
                    if not isinstance(req, dict):
                        req = res["requests"] = {}
                    for k, v in limits.items():
                        if k not in req:
                            req[k] = v
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in _lst(spec.get(key)):
                for p in _lst(c.get("ports")) if isinstance(c, dict) else ():
                    if isinstance(p, dict) and not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort", 0)
    _pod_spec(spec)


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _pod_template(obj: dict, version: str) -> None:
    _template(obj.get("template"))


def _default_labels(obj: dict, labels: dict) -> None:
    """Object labels default to the template's (RC, Job)."""
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if isinstance(meta, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _replication_controller(obj: dict, version: str) -> None:
    spec = _spec(obj)
    tmpl = spec.get("template")
    labels = _dct(tmpl.get("metadata")).get("labels") if isinstance(tmpl, dict) else None
    if isinstance(labels, dict):
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        _default_labels(obj, labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template(tmpl)


def _service(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        sac = spec.get("sessionAffinityConfig")
        cip = sac.get("clientIP") if isinstance(sac, dict) else None
        if not isinstance(cip, dict) or cip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    stype = spec["type"]
    for p in _lst(spec.get("ports")):
        if not isinstance(p, dict):
            continue
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        tp = p.get("targetPort")
        if tp in (None, 0, ""):
            p["targetPort"] = p.get("port", 0)
    external = stype in ("NodePort", "LoadBalancer") or (stype == "ClusterIP" and bool(spec.get("externalIPs")))
    if external and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if stype != "ExternalName":
        # set by kube's IP allocator on create; single-stack IPv4 cluster
        headless_no_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless_no_selector else "SingleStack"
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]
    status = obj.get("status")
    if status is None:
        obj["status"] = {"loadBalancer": {}}
    elif isinstance(status, dict) and status.get("loadBalancer") is None:
        status["loadBalancer"] = {}
    if stype == "LoadBalancer" and isinstance(obj.get("status"), dict):
        for ing in _lst(_dct(obj["status"]["loadBalancer"]).get("ingress")):
            if isinstance(ing, dict) and ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"


def namespace_prepare_create(obj: dict) -> None:
    """The Namespace strategy's ``PrepareForCreate``: status Active and the ``kubernetes`` finalizer
    appended to ``spec.finalizers`` when missing.

    Not part of :func:`apply_defaults` (kube does it in the strategy, not in defaulting).  Only call it
    once something finalizes namespaces (removes ``kubernetes`` through ``namespaces/{name}/finalize``
    after emptying them), or deleted namespaces stay ``Terminating`` forever."""
    spec = _spec(obj)
    fins = spec.get("finalizers")
    if not isinstance(fins, list) or not fins:
        spec["finalizers"] = ["kubernetes"]
    elif "kubernetes" not in fins:
        fins.append("kubernetes")
    obj["status"] = {"phase": "Active"}


def _namespace(obj: dict, version: str) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    name = meta.get("name")
    if name:
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = name
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Active"


def _node(obj: dict, version: str) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    cap = status.get("capacity")
    if cap:
        _canon_rl(cap)
    if status.get("allocatable") is None and cap is not None:
        status["allocatable"] = dict(cap)
    elif status.get("allocatable"):
        _canon_rl(status["allocatable"])


def _pv(obj: dict, version: str) -> None:
    spec = _spec(obj)
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    if spec.get("capacity"):
        _canon_rl(spec["capacity"])
    hp = spec.get("hostPath")
    if isinstance(hp, dict) and hp.get("type") is None:
        hp["type"] = ""
    for key in ("iscsi", "rbd", "azureDisk", "scaleIO"):
        if isinstance(spec.get(key), dict):
            _volume({key: spec[key]})


def _pvc_object(obj: dict) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"
    for key in ("capacity", "allocatedResources"):
        if status.get(key):
            _canon_rl(status[key])
    _pvc_spec(_spec(obj))


def _pvc(obj: dict, version: str) -> None:
    _pvc_object(obj)


def _secret(obj: dict, version: str) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    # Convert_v1_Secret_To_core_Secret: stringData overwrites data (base64 of its UTF-8 bytes) and is never stored
    sd = obj.get("stringData")
    if isinstance(sd, dict) and all(isinstance(v, str) for v in sd.values()):
        del obj["stringData"]
        if sd:
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for k, v in sd.items():
                data[k] = base64.b64encode(v.encode()).decode("ascii")


def _endpoints(obj: dict, version: str) -> None:
    for ss in _lst(obj.get("subsets")):
        if isinstance(ss, dict):
            for p in _lst(ss.get("ports")):
                if isinstance(p, dict) and not p.get("protocol"):
                    p["protocol"] = "TCP"


def _limit_range(obj: dict, version: str) -> None:
    for item in _lst(_spec(obj).get("limits")):
        if not isinstance(item, dict):
            continue
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            if item.get(key):
                _canon_rl(item[key])
        if item.get("type") == "Container":
            default = item.get("default")
            if not isinstance(default, dict):
                default = item["default"] = {}
            dreq = item.get("defaultRequest")
            if not isinstance(dreq, dict):
                dreq = item["defaultRequest"] = {}
            for k, v in _dct(item.get("max")).items():
                default.setdefault(k, v)
            for k, v in default.items():
                dreq.setdefault(k, v)
            for k, v in _dct(item.get("min")).items():
                dreq.setdefault(k, v)
            if not default:
                del item["default"]
            if not dreq:
                del item["defaultRequest"]


def _resource_quota(obj: dict, version: str) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("hard"):
        _canon_rl(spec["hard"])
    status = obj.get("status")
    if isinstance(status, dict):
        for key in ("hard", "used"):
            if status.get(key):
                _canon_rl(status[key])


# --- apps ------------------------------------------------------------------------------------------
def _deployment(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict):
        strategy = spec["strategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template(spec.get("template"))


def _replicaset(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template(spec.get("template"))


def _statefulset(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    us = spec.get("updateStrategy")
    if not isinstance(us, dict):
        us = spec["updateStrategy"] = {}
    if not us.get("type"):
        us["type"] = "RollingUpdate"
        if us.get("rollingUpdate") is None:
            us["rollingUpdate"] = {}
    if us["type"] == "RollingUpdate" and isinstance(us.get("rollingUpdate"), dict):
        if us["rollingUpdate"].get("partition") is None:
            us["rollingUpdate"]["partition"] = 0
    pol = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(pol, dict):
        pol = spec["persistentVolumeClaimRetentionPolicy"] = {}
    if not pol.get("whenDeleted"):
        pol["whenDeleted"] = "Retain"
    if not pol.get("whenScaled"):
        pol["whenScaled"] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template(spec.get("template"))
    for vct in _lst(spec.get("volumeClaimTemplates")):
        if isinstance(vct, dict):
            _pvc_object(vct)


def _daemonset(obj: dict, version: str) -> None:
    spec = _spec(obj)
    us = spec.get("updateStrategy")
    if not isinstance(us, dict):
        us = spec["updateStrategy"] = {}
    if not us.get("type"):
        us["type"] = "RollingUpdate"
    if us["type"] == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = us["rollingUpdate"] = {}
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template(spec.get("template"))


# --- batch -----------------------------------------------------------------------------------------
def _job(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    tmpl = spec.get("template")
    labels = _dct(tmpl.get("metadata")).get("labels") if isinstance(tmpl, dict) else None
    if isinstance(labels, dict):
        _default_labels(obj, labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in _lst(pfp.get("rules")):
            for pat in _lst(rule.get("onPodConditions")) if isinstance(rule, dict) else ():
                if isinstance(pat, dict) and not pat.get("status"):
                    pat["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if pfp is not None else "TerminatingOrFailed"
    _template(tmpl)


def _cronjob(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict):
        js = jt.get("spec")
        if isinstance(js, dict):
            _template(js.get("template"))


# --- other groups -----------------------------------------------------------------------------------
_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scaling_rules(rules: Any, default: dict) -> dict:
    out = {k: (list(map(dict, v)) if isinstance(v, list) else v) for k, v in default.items()}
    if isinstance(rules, dict):
        for k in ("selectPolicy", "stabilizationWindowSeconds", "policies", "tolerance"):
            if rules.get(k) is not None:
                out[k] = rules[k]
    return out


def _hpa(obj: dict, version: str) -> None:
    spec = _spec(obj)
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if version == "v1":
        return
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    for m in _lst(spec["metrics"]):
        if not isinstance(m, dict):
            continue
        for key in ("object", "pods", "resource", "external", "containerResource"):
            src = m.get(key)
            if isinstance(src, dict) and isinstance(src.get("target"), dict):
                _canon_q(src["target"], "value")
                _canon_q(src["target"], "averageValue")
    beh = spec.get("behavior")
    if isinstance(beh, dict):
        beh["scaleUp"] = _scaling_rules(beh.get("scaleUp"), _SCALE_UP)
        beh["scaleDown"] = _scaling_rules(beh.get("scaleDown"), _SCALE_DOWN)


def _network_policy(obj: dict, version: str) -> None:
    spec = _spec(obj)
    for key in ("ingress", "egress"):
        for rule in _lst(spec.get(key)):
            for p in _lst(rule.get("ports")) if isinstance(rule, dict) else ():
                if isinstance(p, dict) and p.get("protocol") is None:
                    p["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _ingress_class(obj: dict, version: str) -> None:
    params = _spec(obj).get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"


def _endpoint_slice(obj: dict, version: str) -> None:
    for p in _lst(obj.get("ports")):
        if isinstance(p, dict):
            if p.get("name") is None:
                p["name"] = ""
            if p.get("protocol") is None:
                p["protocol"] = "TCP"


_RBAC = "rbac.authorization.k8s.io"


def _role_binding(obj: dict, version: str) -> None:
    rr = obj.get("roleRef")
    if isinstance(rr, dict) and not rr.get("apiGroup"):
        rr["apiGroup"] = _RBAC
    for s in _lst(obj.get("subjects")):
        if isinstance(s, dict) and not s.get("apiGroup"):
            if s.get("kind") in ("User", "Group"):
                s["apiGroup"] = _RBAC
            elif s.get("kind") == "ServiceAccount":
                s["apiGroup"] = ""


def _storage_class(obj: dict, version: str) -> None:
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = "Delete"
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = "Immediate"


def _priority_class(obj: dict, version: str) -> None:
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


_DEFAULTERS: dict[tuple[str, str], Callable[[dict, str], None]] = {
    ("", "Pod"): _pod,
    ("", "PodTemplate"): _pod_template,
    ("", "ReplicationController"): _replication_controller,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "PersistentVolume"): _pv,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Secret"): _secret,
    ("", "Endpoints"): _endpoints,
    ("", "LimitRange"): _limit_range,
    ("", "ResourceQuota"): _resource_quota,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
    ("rbac.authorization.k8s.io", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _role_binding,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
}


def apply_defaults(resource: Any, obj: dict) -> None:
    """Default ``obj`` (a JSON dict of ``resource``'s version) in place, as kube's defaulters do.

    Raises :class:`DecodeError` (a ``QuantityError``) for malformed quantities.
    """
    fn = _DEFAULTERS.get((resource.group, resource.kind))
    if fn is not None:
        fn(obj, resource.version)


# --- create-time strategy / admission helpers ----------------------------------------------------------
JOB_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"


def job_prepare_create(obj: dict, uid: str) -> None:
    """Job strategy ``PrepareForCreate``: generate the selector and pod-template labels.

    Unless ``spec.manualSelector`` is true, adds ``batch.kubernetes.io/controller-uid``,
    ``batch.kubernetes.io/job-name``, ``controller-uid`` and ``job-name`` to the template
    labels (keeping user values) and ``matchLabels[batch.kubernetes.io/controller-uid]``
    to the selector.  Also sets ``metadata.uid`` if missing and copies the template
    labels to empty job labels (what kube's defaulting does when the object is read back).
    """
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    if not meta.get("uid"):
        meta["uid"] = uid
    uid = meta["uid"]
    name = meta.get("name", "")
    spec = _spec(obj)
    if spec.get("manualSelector") is not True:
        tmpl = spec.get("template")
        if not isinstance(tmpl, dict):
            tmpl = spec["template"] = {}
        tmeta = tmpl.get("metadata")
        if not isinstance(tmeta, dict):
            tmeta = tmpl["metadata"] = {}
        labels = tmeta.get("labels")
        if not isinstance(labels, dict):
            labels = tmeta["labels"] = {}
        for key in (LEGACY_JOB_NAME, JOB_NAME):
            labels.setdefault(key, name)
        for key in (LEGACY_CONTROLLER_UID, JOB_CONTROLLER_UID):
            labels.setdefault(key, uid)
        sel = spec.get("selector")
        if not isinstance(sel, dict):
            sel = spec["selector"] = {}
        ml = sel.get("matchLabels")
        if not isinstance(ml, dict):
            ml = sel["matchLabels"] = {}
        ml.setdefault(JOB_CONTROLLER_UID, uid)
    labels = _template_labels(spec)
    if labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _template_labels(spec: dict) -> dict | None:
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        tmeta = tmpl.get("metadata")
        if isinstance(tmeta, dict) and isinstance(tmeta.get("labels"), dict):
            return tmeta["labels"]
    return None


_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"


def pod_admission_defaults(obj: dict, priority_class: dict | None = None,
                           default_toleration_seconds: int = 300,
                           unreachable_toleration_seconds: int | None = None) -> None:
    """Admission-time pod mutations kube-apiserver applies on create.

    * DefaultTolerationSeconds: tolerate ``node.kubernetes.io/not-ready`` and
      ``node.kubernetes.io/unreachable`` (NoExecute) for 300 s unless already tolerated
      (``default_toleration_seconds`` for not-ready, ``unreachable_toleration_seconds``,
      default the same, for unreachable).
    * Priority: ``spec.priority`` from ``priority_class`` (the PriorityClass named by
      ``spec.priorityClassName`` or the global default, looked up by the caller), else 0;
      ``spec.preemptionPolicy`` from the class, else ``PreemptLowerPriority``.
    """
    spec = _spec(obj)
    tols = spec.get("tolerations")
    if not isinstance(tols, list):
        tols = []
    not_ready = unreachable = False
    for t in tols:
        if not isinstance(t, dict):
            continue
        key, effect = t.get("key") or "", t.get("effect") or ""
        if key in (_NOT_READY, "") and effect in ("NoExecute", ""):
            not_ready = True
        if key in (_UNREACHABLE, "") and effect in ("NoExecute", ""):
            unreachable = True
    added = []
    if not not_ready:
        added.append({"key": _NOT_READY, "operator": "Exists", "effect": "NoExecute",
                      "tolerationSeconds": default_toleration_seconds})
    if not unreachable:
        added.append({"key": _UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                      "tolerationSeconds": default_toleration_seconds if unreachable_toleration_seconds is None
                      else unreachable_toleration_seconds})
    if added:
        spec["tolerations"] = tols + added
    if spec.get("priority") is None:
        if priority_class is not None:
            spec["priority"] = int(priority_class.get("value") or 0)
            if not spec.get("priorityClassName") and priority_class.get("metadata", {}).get("name"):
                spec["priorityClassName"] = priority_class["metadata"]["name"]
        else:
            spec["priority"] = 0
    if spec.get("preemptionPolicy") is None:
        pp = priority_class.get("preemptionPolicy") if priority_class is not None else None
        spec["preemptionPolicy"] = pp or "PreemptLowerPriority"


def pod_qos_class(pod: dict) -> str:
    """kube's ``ComputePodQOS``: ``Guaranteed``, ``Burstable`` or ``BestEffort``."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    requests: dict[str, int] = {}
    limits: dict[str, int] = {}
    guaranteed = True
    for key in ("containers", "initContainers"):
        for c in _lst(spec.get(key)):
            res = c.get("resources") if isinstance(c, dict) else None
            res = res if isinstance(res, dict) else {}
            for name, v in _dct(res.get("requests")).items():
                if name in ("cpu", "memory"):
                    n = _q.parse(v).nanos
                    if n > 0:
                        requests[name] = requests.get(name, 0) + n
            found = set()
            for name, v in _dct(res.get("limits")).items():
                if name in ("cpu", "memory"):
                    n = _q.parse(v).nanos
                    if n > 0:
                        found.add(name)
                        limits[name] = limits.get(name, 0) + n
            if not {"cpu", "memory"} <= found:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, r in requests.items():
            if limits.get(name) != r:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def pod_prepare_create(obj: dict) -> None:
    """Pod strategy ``PrepareForCreate``: fresh status ``{phase: Pending, qosClass: ...}``."""
    obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj)}
