"""Table columns and row printers of the core/v1 kinds (and events.k8s.io Events).

Each printer mirrors the function of the same kind in kube 1.32's
``pkg/printers/internalversion/printers.go`` as kube-apiserver runs it (always
"wide": every column, priority-1 ones included, is filled).  Objects are the
versioned JSON dicts; where kube prints the internal type, the differences of
the v1 JSON form are bridged here (e.g. ``status.podIP`` vs ``podIPs``).
"""

from __future__ import annotations

from typing import Any, Callable

from k8py.api.duration import human_duration
from k8py.api.tables_util import (
    AGE_COL, EMPTY, IMAGES_COL, NAME_COL, NEG_INF, CONTAINERS_COL, age, col, containers_cells,
    format_labels, has_condition, lb_ingress_string, parse_time, quantity, since,
)

Printer = Callable[[dict[str, Any], float], list[Any]]


# --------------------------------------------------------------------------- pods

POD_COLUMNS = [
    NAME_COL,
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted."),
    AGE_COL,
    col("IP", "string", "pod_ip", 1),
    col("Node", "string", "pod_node", 1),
    col("Nominated Node", "string", "pod_nominated", 1),
    col("Readiness Gates", "string", "pod_gates", 1),
]

POD_SUCCEEDED_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                             "message": "The pod has completed successfully."}]
POD_FAILED_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def _finished(cs: dict[str, Any]) -> float:
    term = (cs.get("lastState") or EMPTY).get("terminated")
    if term is None:
        return NEG_INF
    fin = term.get("finishedAt")
    return parse_time(fin) if fin else NEG_INF


def pod_ip(status: dict[str, Any]) -> str:
    """The pod's primary IP as the internal object has it (status.podIP wins over podIPs[0])."""
    ip = status.get("podIP")
    if ip:
        return ip
    ips = status.get("podIPs")
    if ips:
        return ips[0].get("ip") or ""
    return ""


def pod_row_conditions(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    phase = (obj.get("status") or EMPTY).get("phase")
    if phase == "Succeeded":
        return POD_SUCCEEDED_CONDITIONS
    if phase == "Failed":
        return POD_FAILED_CONDITIONS
    return None


def print_pod(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata") or EMPTY
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    init_specs = spec.get("initContainers") or ()
    total = len(spec.get("containers") or ())
    restartable: set[str] = set()
    for c in init_specs:
        if c.get("restartPolicy") == "Always":
            restartable.add(c.get("name"))
            total += 1
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or ()
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    restarts = 0
    side_restarts = 0
    ready = 0
    last = NEG_INF
    side_last = NEG_INF
    initializing = False
    n_init = len(init_specs)
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        rc = cs.get("restartCount") or 0
        restarts += rc
        fin = _finished(cs)
        if fin > last:
            last = fin
        is_side = bool(restartable) and cs.get("name") in restartable
        if is_side:
            side_restarts += rc
            if fin > side_last:
                side_last = fin
        state = cs.get("state") or EMPTY
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and not term.get("exitCode"):
            continue
        if is_side and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{term.get('exitCode') or 0}"
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or has_condition(conditions, "Initialized"):
        restarts = side_restarts
        last = side_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += cs.get("restartCount") or 0
            fin = _finished(cs)
            if fin > last:
                last = fin
            state = cs.get("state") or EMPTY
            waiting = state.get("waiting")
            term = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                if term.get("signal"):
                    reason = f"Signal:{term['signal']}"
                else:
                    reason = f"ExitCode:{term.get('exitCode') or 0}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true_any(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Failed", "Succeeded"):
            reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last != NEG_INF:
        restarts_str = f"{restarts} ({since_epoch(last, now)} ago)"

    gates = spec.get("readinessGates")
    gates_str = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            ctype = gate.get("conditionType")
            for c in conditions:
                if c.get("type") == ctype:
                    if c.get("status") == "True":
                        true_count += 1
                    break
        gates_str = f"{true_count}/{len(gates)}"
    return [
        meta.get("name", ""), f"{ready}/{total}", reason, restarts_str, age(obj, now),
        pod_ip(status) or "<none>", spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>", gates_str,
    ]


def since_epoch(t: float, now: float) -> str:
    return human_duration(now - t)


def _condition_true_any(conditions: Any, ctype: str) -> bool:
    """hasPodReadyCondition: any condition of the type with status True."""
    for c in conditions:
        if c.get("type") == ctype and c.get("status") == "True":
            return True
    return False


# --------------------------------------------------------------------------- pod templates, RCs

POD_TEMPLATE_COLUMNS = [
    NAME_COL,
    col("Containers", "string", "Names of each container in the template."),
    col("Images", "string", "Images referenced by each container in the template."),
    col("Pod Labels", "string", "The labels for the pod template."),
]


def print_pod_template(obj: dict[str, Any], now: float) -> list[Any]:
    tmpl = obj.get("template") or EMPTY
    names, images = containers_cells(tmpl.get("spec"))
    return [(obj.get("metadata") or EMPTY).get("name", ""), names, images,
            format_labels((tmpl.get("metadata") or EMPTY).get("labels"))]


RC_COLUMNS = [
    NAME_COL,
    col("Desired", "integer", "rc_spec_replicas"),
    col("Current", "integer", "rc_status_replicas"),
    col("Ready", "integer", "rc_ready"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    col("Selector", "string", "rc_selector", 1),
]


def print_rc(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    replicas = spec.get("replicas")
    names, images = containers_cells((spec.get("template") or EMPTY).get("spec"))
    return [(obj.get("metadata") or EMPTY).get("name", ""), 1 if replicas is None else replicas,
            status.get("replicas") or 0, status.get("readyReplicas") or 0, age(obj, now),
            names, images, format_labels(spec.get("selector"))]


# --------------------------------------------------------------------------- services, endpoints

SERVICE_COLUMNS = [
    NAME_COL,
    col("Type", "string", "svc_type"),
    col("Cluster-IP", "string", "svc_cluster_ip"),
    col("External-IP", "string", "svc_external_ips"),
    col("Port(s)", "string", "svc_ports"),
    AGE_COL,
    col("Selector", "string", "svc_selector", 1),
]


def _external_ip(spec: dict[str, Any], status: dict[str, Any], svc_type: str) -> str:
    ext = spec.get("externalIPs") or ()
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if svc_type == "LoadBalancer":
        lb = lb_ingress_string(status)
        if ext:
            parts = lb.split(",") if lb else []
            return ",".join(parts + list(ext))
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def print_service(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    svc_type = spec.get("type", "ClusterIP")
    ips = spec.get("clusterIPs")
    internal = ips[0] if ips else (spec.get("clusterIP") or "<none>")
    pieces = []
    for p in spec.get("ports") or ():
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            pieces.append(f"{p.get('port', 0)}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port', 0)}/{proto}")
    return [(obj.get("metadata") or EMPTY).get("name", ""), svc_type or "", internal,
            _external_ip(spec, obj.get("status") or EMPTY, svc_type), ",".join(pieces) or "<none>",
            age(obj, now), format_labels(spec.get("selector"))]


ENDPOINTS_COLUMNS = [NAME_COL, col("Endpoints", "string", "ep_subsets"), AGE_COL]


def _join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(subsets: Any) -> str:
    if not subsets:
        return "<none>"
    out: list[str] = []
    limit = 3
    more = False
    count = 0
    for ss in subsets:
        addresses = ss.get("addresses") or ()
        ports = ss.get("ports") or ()
        if not ports:
            count += len(addresses)
            for a in addresses:
                if len(out) == limit:
                    more = True
                    break
                out.append(a.get("ip") or "")
            continue
        for port in ports:
            count += len(addresses)
            for a in addresses:
                if len(out) == limit:
                    more = True
                    break
                out.append(_join_host_port(a.get("ip") or "", port.get("port") or 0))
    ret = ",".join(out)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret


def print_endpoints(obj: dict[str, Any], now: float) -> list[Any]:
    return [(obj.get("metadata") or EMPTY).get("name", ""), format_endpoints(obj.get("subsets")), age(obj, now)]


# --------------------------------------------------------------------------- nodes

NODE_COLUMNS = [
    NAME_COL,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE_COL,
    col("Version", "string", "node_kubelet"),
    col("Internal-IP", "string", "node_addresses", 1),
    col("External-IP", "string", "node_addresses", 1),
    col("OS-Image", "string", "node_os", 1),
    col("Kernel-Version", "string", "node_kernel", 1),
    col("Container-Runtime", "string", "node_runtime", 1),
]

_ROLE_PREFIX = "node-role.kubernetes.io/"


def node_roles(labels: Any) -> str:
    roles: set[str] = set()
    for k, v in (labels or EMPTY).items():
        if k.startswith(_ROLE_PREFIX):
            role = k[len(_ROLE_PREFIX):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def print_node(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata") or EMPTY
    status = obj.get("status") or EMPTY
    ready = None
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            ready = c
    states = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if (obj.get("spec") or EMPTY).get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or EMPTY
    internal = external = "<none>"
    for a in status.get("addresses") or ():
        if a.get("type") == "InternalIP" and internal == "<none>":
            internal = a.get("address", "")
        elif a.get("type") == "ExternalIP" and external == "<none>":
            external = a.get("address", "")
    return [meta.get("name", ""), ",".join(states), node_roles(meta.get("labels")), age(obj, now),
            info.get("kubeletVersion") or "", internal, external, info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


# --------------------------------------------------------------------------- events

EVENT_COLUMNS = [
    col("Last Seen", "string", "ev_last"),
    col("Type", "string", "ev_type"),
    col("Reason", "string", "ev_reason"),
    col("Object", "string", "ev_object"),
    col("Subobject", "string", "ev_fieldpath", 1),
    col("Source", "string", "ev_source", 1),
    col("Message", "string", "ev_message"),
    col("First Seen", "string", "ev_first", 1),
    col("Count", "string", "ev_count", 1),
    col("Name", "string", "name", 1, "name"),
]


def core_event(obj: dict[str, Any]) -> dict[str, Any]:
    """The core/v1 field names of an Event given in either core/v1 or events.k8s.io/v1 form."""
    if "regarding" not in obj and "note" not in obj and "deprecatedSource" not in obj \
            and not str(obj.get("apiVersion", "")).startswith("events.k8s.io/"):
        return obj
    return {
        "metadata": obj.get("metadata") or EMPTY,
        "involvedObject": obj.get("regarding") or EMPTY,
        "related": obj.get("related"),
        "reason": obj.get("reason", ""),
        "message": obj.get("note", ""),
        "source": obj.get("deprecatedSource") or EMPTY,
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount") or 0,
        "type": obj.get("type", ""),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "action": obj.get("action", ""),
        "reportingComponent": obj.get("reportingController", ""),
        "reportingInstance": obj.get("reportingInstance", ""),
    }


def print_event(obj: dict[str, Any], now: float) -> list[Any]:
    ev = core_event(obj)
    first = ev.get("firstTimestamp")
    first_s = since(first, now) if first else since(ev.get("eventTime"), now)
    last = ev.get("lastTimestamp")
    last_s = since(last, now) if last else first_s
    count = ev.get("count") or 0
    series = ev.get("series")
    if series is not None:
        last_s = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    inv = ev.get("involvedObject") or EMPTY
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = ev.get("source") or EMPTY
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last_s, ev.get("type") or "", ev.get("reason") or "", target, inv.get("fieldPath") or "", source,
            (ev.get("message") or "").strip(), first_s, count, (ev.get("metadata") or EMPTY).get("name", "")]


# --------------------------------------------------------------------------- simple core kinds

NAMESPACE_COLUMNS = [NAME_COL, col("Status", "string", "The status of the namespace"), AGE_COL]


def print_namespace(obj: dict[str, Any], now: float) -> list[Any]:
    return [(obj.get("metadata") or EMPTY).get("name", ""), (obj.get("status") or EMPTY).get("phase") or "",
            age(obj, now)]


SECRET_COLUMNS = [NAME_COL, col("Type", "string", "secret_type"), col("Data", "string", "secret_data"), AGE_COL]


def print_secret(obj: dict[str, Any], now: float) -> list[Any]:
    data = dict.fromkeys(obj.get("data") or ())
    for k in obj.get("stringData") or ():  # stringData merges into data on write
        data[k] = None
    return [(obj.get("metadata") or EMPTY).get("name", ""), obj.get("type") or "", len(data), age(obj, now)]


CONFIGMAP_COLUMNS = [NAME_COL, col("Data", "string", "cm_data"), AGE_COL]


def print_configmap(obj: dict[str, Any], now: float) -> list[Any]:
    return [(obj.get("metadata") or EMPTY).get("name", ""),
            len(obj.get("data") or ()) + len(obj.get("binaryData") or ()), age(obj, now)]


SERVICE_ACCOUNT_COLUMNS = [NAME_COL, col("Secrets", "string", "sa_secrets"), AGE_COL]


def print_service_account(obj: dict[str, Any], now: float) -> list[Any]:
    return [(obj.get("metadata") or EMPTY).get("name", ""), len(obj.get("secrets") or ()), age(obj, now)]


# --------------------------------------------------------------------------- volumes

PV_COLUMNS = [
    NAME_COL,
    col("Capacity", "string", "pv_capacity"),
    col("Access Modes", "string", "pv_access"),
    col("Reclaim Policy", "string", "pv_reclaim"),
    col("Status", "string", "pv_phase"),
    col("Claim", "string", "pv_claim"),
    col("StorageClass", "string", "StorageClass of the pv"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    col("Reason", "string", "pv_reason"),
    AGE_COL,
    col("VolumeMode", "string", "pv_mode", 1),
]

_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))


def access_modes(modes: Any) -> str:
    present = set(modes or ())
    return ",".join(short for mode, short in _MODES if mode in present)


def print_pv(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata") or EMPTY
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    claim = spec.get("claimRef")
    claim_s = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim is not None else ""
    ann = meta.get("annotations") or EMPTY
    sc = ann[_BETA_CLASS] if _BETA_CLASS in ann else (spec.get("storageClassName") or "")
    phase = "Terminating" if meta.get("deletionTimestamp") else (status.get("phase") or "")
    vac = spec.get("volumeAttributesClassName")
    mode = spec.get("volumeMode")
    return [meta.get("name", ""), quantity((spec.get("capacity") or EMPTY).get("storage")),
            access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy") or "", phase,
            claim_s, sc, "<unset>" if vac is None else vac, status.get("reason") or "", age(obj, now),
            "<unset>" if mode is None else mode]


PVC_COLUMNS = [
    NAME_COL,
    col("Status", "string", "pvc_phase"),
    col("Volume", "string", "pvc_volume"),
    col("Capacity", "string", "pvc_capacity"),
    col("Access Modes", "string", "pvc_access"),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    AGE_COL,
    col("VolumeMode", "string", "pvc_mode", 1),
]


def print_pvc(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata") or EMPTY
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    phase = "Terminating" if meta.get("deletionTimestamp") else (status.get("phase") or "")
    volume = spec.get("volumeName") or ""
    capacity = modes = ""
    if volume:
        modes = access_modes(status.get("accessModes"))
        capacity = quantity((status.get("capacity") or EMPTY).get("storage"))
    ann = meta.get("annotations") or EMPTY
    if _BETA_CLASS in ann:
        sc = ann[_BETA_CLASS]
    else:
        sc = spec.get("storageClassName") or ""
    vac = spec.get("volumeAttributesClassName")
    mode = spec.get("volumeMode")
    return [meta.get("name", ""), phase, volume, capacity, modes, sc, "<unset>" if vac is None else vac,
            age(obj, now), "<unset>" if mode is None else mode]


# --------------------------------------------------------------------------- quota

QUOTA_COLUMNS = [
    NAME_COL,
    col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent "
        "of contention on the node."),
    AGE_COL,
]


def print_quota(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or EMPTY
    hard = status.get("hard") or EMPTY
    used = status.get("used") or EMPTY
    req: list[str] = []
    lim: list[str] = []
    for name in sorted(hard):
        pieces = name.split(".")
        target = lim if len(pieces) > 1 and pieces[0] == "limits" else req
        target.append(f"{name}: {quantity(used.get(name))}/{quantity(hard[name])}")
    return [(obj.get("metadata") or EMPTY).get("name", ""), ", ".join(req), ", ".join(lim), age(obj, now)]


PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Printer]] = {
    ("", "Pod"): (POD_COLUMNS, print_pod),
    ("", "PodTemplate"): (POD_TEMPLATE_COLUMNS, print_pod_template),
    ("", "ReplicationController"): (RC_COLUMNS, print_rc),
    ("", "Service"): (SERVICE_COLUMNS, print_service),
    ("", "Endpoints"): (ENDPOINTS_COLUMNS, print_endpoints),
    ("", "Node"): (NODE_COLUMNS, print_node),
    ("", "Event"): (EVENT_COLUMNS, print_event),
    ("events.k8s.io", "Event"): (EVENT_COLUMNS, print_event),
    ("", "Namespace"): (NAMESPACE_COLUMNS, print_namespace),
    ("", "Secret"): (SECRET_COLUMNS, print_secret),
    ("", "ConfigMap"): (CONFIGMAP_COLUMNS, print_configmap),
    ("", "ServiceAccount"): (SERVICE_ACCOUNT_COLUMNS, print_service_account),
    ("", "PersistentVolume"): (PV_COLUMNS, print_pv),
    ("", "PersistentVolumeClaim"): (PVC_COLUMNS, print_pvc),
    ("", "ResourceQuota"): (QUOTA_COLUMNS, print_quota),
}

__all__ = ["PRINTERS", "core_event", "pod_ip", "pod_row_conditions"]
