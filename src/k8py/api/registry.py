"""The one registry of every API resource k8py serves.

A :class:`Resource` says everything generic code needs to serve a kind: its
group/version/kind, plural and singular names, scope, short names,
categories, subresources and verbs, and where it lives in storage.  Per-kind
behaviour (defaulting, validation, table columns, field selectors,
strategy) lives in sibling modules keyed by ``(group, kind)`` so that this
file stays a table.

Several versions of one kind share one storage location (``storage_version``
names the version objects are stored as); ``api/conversion.py`` converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS
    storage_version: str = ""  # version stored; "" means this one
    storage_group: str = ""  # group whose storage is shared ("" means own)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def stored_version(self) -> str:
        return self.storage_version or self.version

    @property
    def key_prefix(self) -> str:
        """``/registry/<group>/<resource>/``; namespaced keys add ``<ns>/``."""
        grp = self.storage_group or self.group or "core"
        return f"/registry/{grp}/{self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.key_prefix}{namespace}/"
        return self.key_prefix

    @property
    def gk(self) -> tuple[str, str]:
        return (self.group, self.kind)


def _r(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw) -> Resource:
    return Resource(group, version, kind, plural, namespaced, **kw)


ALL = ("all",)

RESOURCES: tuple[Resource, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", False, short_names=("ns",), subresources=("status", "finalize"),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Pod", "pods", short_names=("po",), categories=ALL,
       subresources=("status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy",
                     "ephemeralcontainers")),
    _r("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("status", "proxy")),
    _r("", "v1", "Service", "services", short_names=("svc",), categories=ALL, subresources=("status", "proxy"),
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    _r("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",), subresources=("token",)),
    _r("", "v1", "Event", "events", short_names=("ev",)),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",), categories=ALL,
       subresources=("status", "scale")),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, short_names=("pv",), subresources=("status",)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), subresources=("status",)),
    _r("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), subresources=("status",)),
    _r("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r("", "v1", "Binding", "bindings", verbs=("create",)),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=ALL,
       subresources=("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=ALL,
       subresources=("status", "scale")),
    _r("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=ALL,
       subresources=("status", "scale")),
    _r("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=ALL, subresources=("status",)),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", categories=ALL, subresources=("status",)),
    _r("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=ALL, subresources=("status",)),
    # autoscaling
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
       categories=ALL, subresources=("status",)),
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",),
       categories=ALL, subresources=("status",), storage_version="v2"),
    # coordination, events, discovery
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    _r("events.k8s.io", "v1", "Event", "events", short_names=("ev",), storage_group="core",
       storage_version="v1"),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # networking
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), subresources=("status",)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    # policy
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",),
       subresources=("status",)),
    # rbac
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # storage, scheduling
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)),
)

# Preferred version of each group, in discovery order (as kube-apiserver lists them).
GROUP_ORDER: tuple[str, ...] = (
    "", "apps", "events.k8s.io", "autoscaling", "batch", "coordination.k8s.io", "discovery.k8s.io",
    "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io",
)
PREFERRED_VERSION: dict[str, str] = {"autoscaling": "v2"}


@dataclass
class Registry:
    resources: tuple[Resource, ...] = RESOURCES
    _by_path: dict[tuple[str, str, str], Resource] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str, str], Resource] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.resources:
            self._by_path[(r.group, r.version, r.plural)] = r
            self._by_kind[(r.group, r.version, r.kind)] = r

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, version, kind))

    def for_api_version(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        return self.by_kind(group, version, kind)

    def groups(self) -> list[tuple[str, list[str]]]:
        """[(group, [versions, preferred first])] in discovery order."""
        out: list[tuple[str, list[str]]] = []
        for g in GROUP_ORDER:
            versions: list[str] = []
            for r in self.resources:
                if r.group == g and r.version not in versions:
                    versions.append(r.version)
            pref = PREFERRED_VERSION.get(g)
            if pref in versions:
                versions.remove(pref)
                versions.insert(0, pref)
            out.append((g, versions))
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if r.group == group and r.version == version]

    def storage_resource(self, r: Resource) -> Resource:
        """The resource whose version is the one stored for ``r``."""
        grp = r.storage_group if r.storage_group else r.group
        if grp == "core":
            grp = ""
        return self._by_path[(grp, r.stored_version, r.plural)]


REGISTRY = Registry()
