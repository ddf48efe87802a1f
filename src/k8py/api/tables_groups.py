"""Table columns and row printers of the kinds outside the core group.

apps, batch, autoscaling, coordination.k8s.io, discovery.k8s.io,
networking.k8s.io, policy, rbac.authorization.k8s.io, storage.k8s.io and
scheduling.k8s.io — each mirroring its print function in kube 1.32's
``pkg/printers/internalversion/printers.go`` (always wide, as kube-apiserver
generates them).
"""

from __future__ import annotations

from typing import Any, Callable

from k8py.api.duration import human_duration
from k8py.api.tables_util import (
    AGE_COL, CONTAINERS_COL, EMPTY, IMAGES_COL, NAME_COL, age, bool_ptr, col, containers_cells,
    format_label_selector, format_labels, has_condition, int_or_string, lb_ingress_string, list_with_more,
    quantity, selector_string, since, template_spec, ts,
)

Printer = Callable[[dict[str, Any], float], list[Any]]


def _name(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or EMPTY).get("name", "")


def _replicas(spec: dict[str, Any]) -> int:
    r = spec.get("replicas")
    return 1 if r is None else r


# --------------------------------------------------------------------------- apps

DEPLOYMENT_COLUMNS = [
    NAME_COL,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", "deploy_updated"),
    col("Available", "string", "deploy_available"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    col("Selector", "string", "deploy_selector", 1),
]


def print_deployment(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    names, images = containers_cells(template_spec(obj))
    sel = selector_string(spec.get("selector"))
    return [_name(obj), f"{status.get('readyReplicas') or 0}/{_replicas(spec)}", status.get("updatedReplicas") or 0,
            status.get("availableReplicas") or 0, age(obj, now), names, images,
            "<invalid>" if sel is None else sel]


REPLICASET_COLUMNS = [
    NAME_COL,
    col("Desired", "integer", "rs_spec_replicas"),
    col("Current", "integer", "rs_status_replicas"),
    col("Ready", "integer", "rs_ready"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    col("Selector", "string", "rs_selector", 1),
]


def print_replicaset(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    names, images = containers_cells(template_spec(obj))
    return [_name(obj), _replicas(spec), status.get("replicas") or 0, status.get("readyReplicas") or 0,
            age(obj, now), names, images, format_label_selector(spec.get("selector"))]


STATEFULSET_COLUMNS = [
    NAME_COL,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
]


def print_statefulset(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    names, images = containers_cells(template_spec(obj))
    return [_name(obj), f"{status.get('readyReplicas') or 0}/{_replicas(spec)}", age(obj, now), names, images]


DAEMONSET_COLUMNS = [
    NAME_COL,
    col("Desired", "integer", "ds_desired"),
    col("Current", "integer", "ds_current"),
    col("Ready", "integer", "ds_ready"),
    col("Up-to-date", "integer", "ds_updated"),
    col("Available", "integer", "ds_available"),
    col("Node Selector", "string", "pod_node_selector"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    col("Selector", "string", "ds_selector", 1),
]


def print_daemonset(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or EMPTY
    pod_spec = template_spec(obj)
    names, images = containers_cells(pod_spec)
    return [_name(obj), status.get("desiredNumberScheduled") or 0, status.get("currentNumberScheduled") or 0,
            status.get("numberReady") or 0, status.get("updatedNumberScheduled") or 0,
            status.get("numberAvailable") or 0, format_labels(pod_spec.get("nodeSelector")), age(obj, now),
            names, images, format_label_selector((obj.get("spec") or EMPTY).get("selector"))]


CONTROLLER_REVISION_COLUMNS = [
    NAME_COL,
    col("Controller", "string", "Controller of the object"),
    col("Revision", "string", "cr_revision"),
    AGE_COL,
]


def print_controller_revision(obj: dict[str, Any], now: float) -> list[Any]:
    controller = "<none>"
    for ref in (obj.get("metadata") or EMPTY).get("ownerReferences") or ():
        if ref.get("controller"):
            api_version = ref.get("apiVersion") or ""
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = ref.get("kind") or ""
            if group or kind:
                gk = f"{kind}.{group}" if group else kind
                controller = f"{gk.lower()}/{ref.get('name', '')}"
            else:
                controller = ref.get("name", "")
            break
    return [_name(obj), controller, obj.get("revision") or 0, age(obj, now)]


# --------------------------------------------------------------------------- batch

JOB_COLUMNS = [
    NAME_COL,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", "job_succeeded"),
    col("Duration", "string", "Time required to complete the job."),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    col("Selector", "string", "job_selector", 1),
]


def job_status(obj: dict[str, Any]) -> str:
    conditions = (obj.get("status") or EMPTY).get("conditions")
    if has_condition(conditions, "Complete"):
        return "Complete"
    if has_condition(conditions, "Failed"):
        return "Failed"
    if (obj.get("metadata") or EMPTY).get("deletionTimestamp"):
        return "Terminating"
    if has_condition(conditions, "Suspended"):
        return "Suspended"
    if has_condition(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def print_job(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    succeeded = status.get("succeeded") or 0
    completions = spec.get("completions")
    if completions is not None:
        comp = f"{succeeded}/{completions}"
    else:
        parallelism = spec.get("parallelism") or 0
        comp = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start = ts(status.get("startTime"))
    if start is None:
        duration = ""
    else:
        end = ts(status.get("completionTime"))
        duration = human_duration((now if end is None else end) - start)
    names, images = containers_cells(template_spec(obj))
    return [_name(obj), job_status(obj), comp, duration, age(obj, now), names, images,
            format_label_selector(spec.get("selector"))]


CRONJOB_COLUMNS = [
    NAME_COL,
    col("Schedule", "string", "cj_schedule"),
    col("Timezone", "string", "cj_timezone"),
    col("Suspend", "boolean", "cj_suspend"),
    col("Active", "integer", "cj_active"),
    col("Last Schedule", "string", "cj_last"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    col("Selector", "string", "job_selector", 1),
]


def print_cronjob(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    job_spec = (spec.get("jobTemplate") or EMPTY).get("spec") or EMPTY
    last = status.get("lastScheduleTime")
    tz = spec.get("timeZone")
    names, images = containers_cells((job_spec.get("template") or EMPTY).get("spec"))
    return [_name(obj), spec.get("schedule") or "", "<none>" if tz is None else tz, bool_ptr(spec.get("suspend")),
            len(status.get("active") or ()), "<none>" if last is None else since(last, now), age(obj, now),
            names, images, format_label_selector(job_spec.get("selector"))]


# --------------------------------------------------------------------------- autoscaling

HPA_COLUMNS = [
    NAME_COL,
    col("Reference", "string", "hpa_ref"),
    col("Targets", "string", "hpa_metrics"),
    col("MinPods", "string", "hpa_min"),
    col("MaxPods", "string", "hpa_max"),
    col("Replicas", "string", "hpa_current"),
    AGE_COL,
]


def _q(v: Any) -> str:
    """Quantity.String() of a *Quantity: ``<nil>`` when unset."""
    return "<nil>" if v is None else quantity(v)


def _hpa_v1_metrics(obj: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    specs: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    target = spec.get("targetCPUUtilizationPercentage")
    if target is not None:
        specs.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": target}}})
    current = status.get("currentCPUUtilizationPercentage")
    if current is not None:
        statuses.append({"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": current}}})
    return specs, statuses


def _value_metric(spec_target: dict[str, Any], status_src: Any) -> str:
    cur = (status_src or EMPTY).get("current") or EMPTY if status_src is not None else None
    if spec_target.get("averageValue") is not None:
        current = "<unknown>"
        if cur is not None and cur.get("averageValue") is not None:
            current = quantity(cur["averageValue"])
        return f"{current}/{quantity(spec_target['averageValue'])} (avg)"
    current = "<unknown>" if cur is None else _q(cur.get("value"))
    return f"{current}/{_q(spec_target.get('value'))}"


def _resource_metric(src: dict[str, Any], status_src: Any) -> str:
    name = src.get("name") or ""
    target = src.get("target") or EMPTY
    cur = None if status_src is None else (status_src.get("current") or EMPTY)
    if target.get("averageValue") is not None:
        current = "<unknown>" if cur is None else _q(cur.get("averageValue"))
        return f"{name}: {current}/{quantity(target['averageValue'])}"
    current = "<unknown>"
    if cur is not None and cur.get("averageUtilization") is not None:
        current = f"{cur['averageUtilization']}%"
    tgt = "<auto>" if target.get("averageUtilization") is None else f"{target['averageUtilization']}%"
    return f"{name}: {current}/{tgt}"


_SOURCE_KEY = {"External": "external", "Object": "object", "Pods": "pods", "Resource": "resource",
               "ContainerResource": "containerResource"}


def format_hpa_metrics(specs: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> str:
    if not specs:
        return "<none>"
    out: list[str] = []
    for i, spec in enumerate(specs):
        mtype = spec.get("type")
        key = _SOURCE_KEY.get(mtype or "")
        if key is None:
            out.append("<unknown type>")
            continue
        src = spec.get(key) or EMPTY
        st = statuses[i].get(key) if len(statuses) > i else None
        if mtype in ("External", "Object"):
            out.append(_value_metric(src.get("target") or EMPTY, st))
        elif mtype == "Pods":
            current = "<unknown>" if st is None else _q((st.get("current") or EMPTY).get("averageValue"))
            out.append(f"{current}/{_q((src.get('target') or EMPTY).get('averageValue'))}")
        else:
            out.append(_resource_metric(src, st))
    if len(out) > 2:
        return f"{', '.join(out[:2])} + {len(out) - 2} more..."
    return ", ".join(out)


def print_hpa(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    status = obj.get("status") or EMPTY
    if "metrics" in spec or "currentMetrics" in status or ("targetCPUUtilizationPercentage" not in spec
                                                          and "currentCPUUtilizationPercentage" not in status):
        specs, statuses = spec.get("metrics") or [], status.get("currentMetrics") or []
    else:
        specs, statuses = _hpa_v1_metrics(obj)
    ref = spec.get("scaleTargetRef") or EMPTY
    min_r = spec.get("minReplicas")
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", format_hpa_metrics(specs, statuses),
            "<unset>" if min_r is None else str(min_r), spec.get("maxReplicas") or 0,
            status.get("currentReplicas") or 0, age(obj, now)]


# --------------------------------------------------------------------------- coordination, discovery

LEASE_COLUMNS = [NAME_COL, col("Holder", "string", "lease_holder"), AGE_COL]


def print_lease(obj: dict[str, Any], now: float) -> list[Any]:
    return [_name(obj), (obj.get("spec") or EMPTY).get("holderIdentity") or "", age(obj, now)]


ENDPOINTSLICE_COLUMNS = [
    NAME_COL,
    col("AddressType", "string", "eps_address"),
    col("Ports", "string", "eps_ports"),
    col("Endpoints", "string", "eps_endpoints"),
    AGE_COL,
]


def print_endpointslice(obj: dict[str, Any], now: float) -> list[Any]:
    ports: list[str] = []
    more = False
    count = 0
    for p in obj.get("ports") or ():
        if len(ports) < 3:
            if p.get("port") is not None:
                ports.append(str(p["port"]))
            elif p.get("name") is not None:
                ports.append(p["name"])
            else:
                ports.append("*")
        elif len(ports) == 3:
            more = True
        count += 1
    eps: list[str] = []
    emore = False
    ecount = 0
    for ep in obj.get("endpoints") or ():
        for addr in ep.get("addresses") or ():
            if len(eps) < 3:
                eps.append(addr)
            elif len(eps) == 3:
                emore = True
            ecount += 1
    return [_name(obj), obj.get("addressType") or "", list_with_more(ports, more, count, 3),
            list_with_more(eps, emore, ecount, 3), age(obj, now)]


# --------------------------------------------------------------------------- networking

INGRESS_COLUMNS = [
    NAME_COL,
    col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
    col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
    col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE_COL,
]


def _hosts(rules: Any) -> str:
    rules = rules or ()
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    ret = ",".join(hosts)
    if more:
        return f"{ret} + {len(rules) - 3} more..."
    return ret


def print_ingress(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    cls = spec.get("ingressClassName")
    return [_name(obj), "<none>" if cls is None else cls, _hosts(spec.get("rules")),
            lb_ingress_string(obj.get("status")), "80, 443" if spec.get("tls") else "80", age(obj, now)]


INGRESS_CLASS_COLUMNS = [
    NAME_COL,
    col("Controller", "string", "Controller that is responsible for handling this class"),
    col("Parameters", "string", "A reference to a resource with additional parameters"),
    AGE_COL,
]


def print_ingress_class(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    params = spec.get("parameters")
    p = "<none>"
    if params is not None:
        p = params.get("kind") or ""
        if params.get("apiGroup") is not None:
            p += "." + params["apiGroup"]
        p += "/" + (params.get("name") or "")
    return [_name(obj), spec.get("controller") or "", p, age(obj, now)]


NETWORK_POLICY_COLUMNS = [NAME_COL, col("Pod-Selector", "string", "netpol_selector"), AGE_COL]


def print_network_policy(obj: dict[str, Any], now: float) -> list[Any]:
    sel = (obj.get("spec") or EMPTY).get("podSelector") or EMPTY
    return [_name(obj), format_label_selector(sel) if sel else "<none>", age(obj, now)]


# --------------------------------------------------------------------------- policy

PDB_COLUMNS = [
    NAME_COL,
    col("Min Available", "string", "The minimum number of pods that must be available."),
    col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE_COL,
]


def print_pdb(obj: dict[str, Any], now: float) -> list[Any]:
    spec = obj.get("spec") or EMPTY
    mn = spec.get("minAvailable")
    mx = spec.get("maxUnavailable")
    return [_name(obj), "N/A" if mn is None else int_or_string(mn), "N/A" if mx is None else int_or_string(mx),
            (obj.get("status") or EMPTY).get("disruptionsAllowed") or 0, age(obj, now)]


# --------------------------------------------------------------------------- rbac

def _binding_columns(doc: str, what: str) -> list[dict[str, Any]]:
    return [
        NAME_COL,
        col("Role", "string", doc),
        AGE_COL,
        col("Users", "string", f"Users in the {what}", 1),
        col("Groups", "string", f"Groups in the {what}", 1),
        col("ServiceAccounts", "string", f"ServiceAccounts in the {what}", 1),
    ]


ROLEBINDING_COLUMNS = _binding_columns("rb_role", "roleBinding")
CLUSTERROLEBINDING_COLUMNS = _binding_columns("crb_role", "clusterRoleBinding")


def print_binding(obj: dict[str, Any], now: float) -> list[Any]:
    ref = obj.get("roleRef") or EMPTY
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in obj.get("subjects") or ():
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
        elif kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", age(obj, now), ", ".join(users),
            ", ".join(groups), ", ".join(sas)]


# --------------------------------------------------------------------------- storage, scheduling

STORAGE_CLASS_COLUMNS = [
    NAME_COL,
    col("Provisioner", "string", "sc_provisioner"),
    col("ReclaimPolicy", "string", "sc_reclaim"),
    col("VolumeBindingMode", "string", "sc_binding"),
    col("AllowVolumeExpansion", "string", "sc_expansion"),
    AGE_COL,
]

_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def print_storage_class(obj: dict[str, Any], now: float) -> list[Any]:
    ann = (obj.get("metadata") or EMPTY).get("annotations") or EMPTY
    name = _name(obj)
    if ann.get(_DEFAULT_CLASS[0]) == "true" or ann.get(_DEFAULT_CLASS[1]) == "true":
        name += " (default)"
    return [name, obj.get("provisioner") or "", obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion")), age(obj, now)]


PRIORITY_CLASS_COLUMNS = [
    NAME_COL,
    col("Value", "integer", "pc_value"),
    col("Global-Default", "boolean", "pc_default"),
    AGE_COL,
    col("PreemptionPolicy", "string", "pc_preemption"),
]


def print_priority_class(obj: dict[str, Any], now: float) -> list[Any]:
    return [_name(obj), obj.get("value") or 0, bool(obj.get("globalDefault")), age(obj, now),
            obj.get("preemptionPolicy") or ""]


PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Printer]] = {
    ("apps", "Deployment"): (DEPLOYMENT_COLUMNS, print_deployment),
    ("apps", "ReplicaSet"): (REPLICASET_COLUMNS, print_replicaset),
    ("apps", "StatefulSet"): (STATEFULSET_COLUMNS, print_statefulset),
    ("apps", "DaemonSet"): (DAEMONSET_COLUMNS, print_daemonset),
    ("apps", "ControllerRevision"): (CONTROLLER_REVISION_COLUMNS, print_controller_revision),
    ("batch", "Job"): (JOB_COLUMNS, print_job),
    ("batch", "CronJob"): (CRONJOB_COLUMNS, print_cronjob),
    ("autoscaling", "HorizontalPodAutoscaler"): (HPA_COLUMNS, print_hpa),
    ("coordination.k8s.io", "Lease"): (LEASE_COLUMNS, print_lease),
    ("discovery.k8s.io", "EndpointSlice"): (ENDPOINTSLICE_COLUMNS, print_endpointslice),
    ("networking.k8s.io", "Ingress"): (INGRESS_COLUMNS, print_ingress),
    ("networking.k8s.io", "IngressClass"): (INGRESS_CLASS_COLUMNS, print_ingress_class),
    ("networking.k8s.io", "NetworkPolicy"): (NETWORK_POLICY_COLUMNS, print_network_policy),
    ("policy", "PodDisruptionBudget"): (PDB_COLUMNS, print_pdb),
    ("rbac.authorization.k8s.io", "RoleBinding"): (ROLEBINDING_COLUMNS, print_binding),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (CLUSTERROLEBINDING_COLUMNS, print_binding),
    ("storage.k8s.io", "StorageClass"): (STORAGE_CLASS_COLUMNS, print_storage_class),
    ("scheduling.k8s.io", "PriorityClass"): (PRIORITY_CLASS_COLUMNS, print_priority_class),
}
