"""Generate ``src/k8py/api/data/schema.json``: k8py's schema of its kinds.

Structure (field names, JSON names, scalar/array/map/object shape) comes from
the model classes of the installed ``kubernetes`` Python client: every class
has ``openapi_types`` (attribute -> type string such as ``List[V1Container]``)
and ``attribute_map`` (attribute -> JSON field name).  Client class names are
mapped to Kubernetes definition names (``V1PodSpec`` ->
``io.k8s.api.core.v1.PodSpec``).

What the client models do not carry is kept here as hand-maintained tables of
facts about the Kubernetes types: strategic-merge-patch metadata and list/map
types, required fields, and which fields are Quantity / IntOrString /
RawExtension / FieldsV1 / MicroTime.

Output format (compact JSON)::

    {"definitions": {NAME: {"type": "object", "properties": {...},
                            "required": [...], "x-kubernetes-...": ...}}}

Properties are OpenAPI v3 style; references are ``{"$ref":
"#/components/schemas/NAME"}``.

Run:  .venv/bin/python tools/gen_schema.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Union

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from k8py.api.registry import REGISTRY  # noqa: E402

OUT = ROOT / "src" / "k8py" / "api" / "data" / "schema.json"
REF = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."

# A patch fact: either a bare list/map type ("atomic", "set", "granular"), or a
# tuple (patch_strategy, patch_merge_key, list_type, list_map_keys, map_type)
# whose trailing empty members may be left out.
Fact = Union[str, tuple]

# Types from apimachinery's meta/v1 that the client names without a group.
META_KINDS = frozenset({
    "Condition", "DeleteOptions", "FieldsV1", "LabelSelector", "LabelSelectorRequirement", "ListMeta",
    "ManagedFieldsEntry", "MicroTime", "ObjectMeta", "OwnerReference", "Preconditions", "ShardInfo", "Status",
    "StatusCause", "StatusDetails", "Time", "WatchEvent",
})
# core/v1 types referenced from other API groups.
CORE_SHARED = frozenset({
    "PersistentVolumeClaim", "PodTemplateSpec", "ObjectReference", "EventSource", "TypedLocalObjectReference",
    "TopologySelectorTerm",
})
# Kinds of other API groups that newer client versions reference from batch/v1.
OTHER_GROUP_KINDS = {
    "TopologyConstraint": "scheduling", "WorkloadPodGroupDisruptionMode": "scheduling",
    "WorkloadPodGroupGangSchedulingPolicy": "scheduling", "WorkloadPodGroupResourceClaim": "scheduling",
    "WorkloadPodGroupSchedulingConstraints": "scheduling", "WorkloadPodGroupSchedulingPolicy": "scheduling",
}
# Client class-name prefixes used where a short name is ambiguous across groups.
PREFIX_PACKAGES = {
    "Core": "core", "Events": "events", "Discovery": "discovery", "Storage": "storage",
    "Authentication": "authentication", "Rbac": "rbac", "Apps": "apps", "Batch": "batch",
    "Networking": "networking", "Policy": "policy", "Autoscaling": "autoscaling",
}

# Scalar definitions of apimachinery (OpenAPI v3 form, as kube-apiserver publishes them).
SCALAR_DEFS: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "A fixed-point number with an optional SI or binary suffix, e.g. 100m, 1Gi.",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "Either an integer or a string.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    },
    META + "Time": {"description": "An RFC 3339 timestamp, second precision.",
                    "type": "string", "format": "date-time"},
    META + "MicroTime": {"description": "An RFC 3339 timestamp, microsecond precision.",
                         "type": "string", "format": "date-time"},
    META + "FieldsV1": {"description": "A set of fields in the FieldsV1 trie format.", "type": "object"},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"description": "An embedded object of any kind.",
                                                     "type": "object"},
}
SPECIAL_NAMES = {
    "Quantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "IntOrString": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "Time": META + "Time",
    "MicroTime": META + "MicroTime",
    "FieldsV1": META + "FieldsV1",
    "RawExtension": "io.k8s.apimachinery.pkg.runtime.RawExtension",
}

# Kinds served that are not resources of their own (subresource bodies, meta kinds).
EXTRA_KINDS: tuple[tuple[str, str, str], ...] = (
    ("autoscaling", "v1", "Scale"),
    ("policy", "v1", "Eviction"),
    ("authentication.k8s.io", "v1", "TokenRequest"),
    ("", "v1", "Status"),
)
# meta kinds that kube-apiserver registers in every group-version.
ALL_GV_KINDS = ("DeleteOptions", "WatchEvent")

# ---------------------------------------------------------------------------
# Facts about the Kubernetes types (researched from kubernetes/api types and the
# published OpenAPI).  Definition names are abbreviated: "core.v1.PodSpec" is
# io.k8s.api.core.v1.PodSpec, "meta.v1.ObjectMeta" is
# io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta.
# ---------------------------------------------------------------------------

PATCH_FACTS: dict[str, dict[str, Fact]] = {
    "apps.v1.DaemonSetStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "apps.v1.DeploymentSpec": {"strategy": ("retainKeys",)},
    "apps.v1.DeploymentStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "apps.v1.ReplicaSetStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "apps.v1.StatefulSetSpec": {"volumeClaimTemplates": "atomic"},
    "apps.v1.StatefulSetStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "authentication.v1.TokenRequestSpec": {"audiences": "atomic"},
    "autoscaling.v2.HPAScalingRules": {"policies": "atomic"},
    "autoscaling.v2.HorizontalPodAutoscalerSpec": {"metrics": "atomic"},
    "autoscaling.v2.HorizontalPodAutoscalerStatus": {"conditions": ("merge", "type", "map", ("type",)),
        "currentMetrics": "atomic"},
    "batch.v1.CronJobStatus": {"active": "atomic"},
    "batch.v1.JobStatus": {"conditions": ("merge", "type", "atomic")},
    "batch.v1.PodFailurePolicy": {"rules": "atomic"},
    "batch.v1.PodFailurePolicyOnExitCodesRequirement": {"values": "set"},
    "batch.v1.PodFailurePolicyRule": {"onPodConditions": "atomic"},
    "batch.v1.SuccessPolicy": {"rules": "atomic"},
    "batch.v1.UncountedTerminatedPods": {"failed": "set", "succeeded": "set"},
    "core.v1.Capabilities": {"add": "atomic", "drop": "atomic"},
    "core.v1.CephFSPersistentVolumeSource": {"monitors": "atomic"},
    "core.v1.CephFSVolumeSource": {"monitors": "atomic"},
    "core.v1.ConfigMapProjection": {"items": "atomic"},
    "core.v1.ConfigMapVolumeSource": {"items": "atomic"},
    "core.v1.Container": {"args": "atomic", "command": "atomic", "env": ("merge", "name", "map", ("name",)),
        "envFrom": "atomic", "ports": ("merge", "containerPort", "map", ("containerPort", "protocol")),
        "resizePolicy": "atomic", "restartPolicyRules": "atomic",
        "volumeDevices": ("merge", "devicePath", "map", ("devicePath",)),
        "volumeMounts": ("merge", "mountPath", "map", ("mountPath",))},
    "core.v1.ContainerImage": {"names": "atomic"},
    "core.v1.ContainerRestartRuleOnExitCodes": {"values": "set"},
    "core.v1.ContainerStatus": {"allocatedResourcesStatus": ("merge", "name", "map", ("name",)),
        "volumeMounts": ("merge", "mountPath", "map", ("mountPath",))},
    "core.v1.DownwardAPIProjection": {"items": "atomic"},
    "core.v1.DownwardAPIVolumeSource": {"items": "atomic"},
    "core.v1.EndpointSubset": {"addresses": "atomic", "notReadyAddresses": "atomic", "ports": "atomic"},
    "core.v1.Endpoints": {"subsets": "atomic"},
    "core.v1.EphemeralContainer": {"args": "atomic", "command": "atomic",
        "env": ("merge", "name", "map", ("name",)), "envFrom": "atomic",
        "ports": ("merge", "containerPort", "map", ("containerPort", "protocol")), "resizePolicy": "atomic",
        "restartPolicyRules": "atomic", "volumeDevices": ("merge", "devicePath", "map", ("devicePath",)),
        "volumeMounts": ("merge", "mountPath", "map", ("mountPath",))},
    "core.v1.ExecAction": {"command": "atomic"},
    "core.v1.FCVolumeSource": {"targetWWNs": "atomic", "wwids": "atomic"},
    "core.v1.HTTPGetAction": {"httpHeaders": "atomic"},
    "core.v1.HostAlias": {"hostnames": "atomic"},
    "core.v1.ISCSIPersistentVolumeSource": {"portals": "atomic"},
    "core.v1.ISCSIVolumeSource": {"portals": "atomic"},
    "core.v1.LimitRangeSpec": {"limits": "atomic"},
    "core.v1.LinuxContainerUser": {"supplementalGroups": "atomic"},
    "core.v1.LoadBalancerIngress": {"ports": "atomic"},
    "core.v1.LoadBalancerStatus": {"ingress": "atomic"},
    "core.v1.NamespaceSpec": {"finalizers": "atomic"},
    "core.v1.NamespaceStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "core.v1.NodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": "atomic"},
    "core.v1.NodeAllocatableResourceClaimStatus": {"containers": "set"},
    "core.v1.NodeSelector": {"nodeSelectorTerms": "atomic"},
    "core.v1.NodeSelectorRequirement": {"values": "atomic"},
    "core.v1.NodeSelectorTerm": {"matchExpressions": "atomic", "matchFields": "atomic"},
    "core.v1.NodeSpec": {"podCIDRs": ("merge", "", "set"), "taints": "atomic"},
    "core.v1.NodeStatus": {"addresses": ("merge", "type", "map", ("type",)),
        "conditions": ("merge", "type", "map", ("type",)), "declaredFeatures": "atomic", "images": "atomic",
        "runtimeHandlers": "atomic", "volumesAttached": "atomic", "volumesInUse": "atomic"},
    "core.v1.PersistentVolumeClaimSpec": {"accessModes": "atomic"},
    "core.v1.PersistentVolumeClaimStatus": {"accessModes": "atomic", "allocatedResourceStatuses": "granular",
        "conditions": ("merge", "type", "map", ("type",))},
    "core.v1.PersistentVolumeSpec": {"accessModes": "atomic", "claimRef": "granular", "mountOptions": "atomic"},
    "core.v1.PodAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": "atomic",
        "requiredDuringSchedulingIgnoredDuringExecution": "atomic"},
    "core.v1.PodAffinityTerm": {"matchLabelKeys": "atomic", "mismatchLabelKeys": "atomic", "namespaces": "atomic"},
    "core.v1.PodAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": "atomic",
        "requiredDuringSchedulingIgnoredDuringExecution": "atomic"},
    "core.v1.PodDNSConfig": {"nameservers": "atomic", "options": "atomic", "searches": "atomic"},
    "core.v1.PodExtendedResourceClaimStatus": {"requestMappings": "atomic"},
    "core.v1.PodSecurityContext": {"supplementalGroups": "atomic", "sysctls": "atomic"},
    "core.v1.PodSpec": {"containers": ("merge", "name", "map", ("name",)),
        "ephemeralContainers": ("merge", "name", "map", ("name",)), "hostAliases": ("merge", "ip", "map", ("ip",)),
        "imagePullSecrets": ("merge", "name", "map", ("name",)),
        "initContainers": ("merge", "name", "map", ("name",)), "nodeSelector": "atomic",
        "readinessGates": "atomic", "resourceClaims": ("merge,retainKeys", "name", "map", ("name",)),
        "schedulingGates": ("merge", "name", "map", ("name",)), "tolerations": "atomic",
        "topologySpreadConstraints": ("merge", "topologyKey", "map", ("topologyKey", "whenUnsatisfiable")),
        "volumes": ("merge,retainKeys", "name", "map", ("name",))},
    "core.v1.PodStatus": {"conditions": ("merge", "type", "map", ("type",)), "containerStatuses": "atomic",
        "ephemeralContainerStatuses": "atomic", "hostIPs": ("merge", "ip", "atomic"),
        "initContainerStatuses": "atomic", "nodeAllocatableResourceClaimStatuses": "atomic",
        "podIPs": ("merge", "ip", "map", ("ip",)),
        "resourceClaimStatuses": ("merge,retainKeys", "name", "map", ("name",))},
    "core.v1.ProjectedVolumeSource": {"sources": "atomic"},
    "core.v1.RBDPersistentVolumeSource": {"monitors": "atomic"},
    "core.v1.RBDVolumeSource": {"monitors": "atomic"},
    "core.v1.ReplicationControllerSpec": {"selector": "atomic"},
    "core.v1.ReplicationControllerStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "core.v1.ResourceQuotaSpec": {"scopes": "atomic"},
    "core.v1.ResourceRequirements": {"claims": ("", "", "map", ("name",))},
    "core.v1.ResourceStatus": {"resources": ("", "", "map", ("resourceID",))},
    "core.v1.ScopeSelector": {"matchExpressions": "atomic"},
    "core.v1.ScopedResourceSelectorRequirement": {"values": "atomic"},
    "core.v1.SecretProjection": {"items": "atomic"},
    "core.v1.SecretVolumeSource": {"items": "atomic"},
    "core.v1.ServiceAccount": {"imagePullSecrets": "atomic", "secrets": ("merge", "name", "map", ("name",))},
    "core.v1.ServiceSpec": {"clusterIPs": "atomic", "externalIPs": "atomic", "ipFamilies": "atomic",
        "loadBalancerSourceRanges": "atomic", "ports": ("merge", "port", "map", ("port", "protocol")),
        "selector": "atomic"},
    "core.v1.ServiceStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "core.v1.TopologySelectorLabelRequirement": {"values": "atomic"},
    "core.v1.TopologySelectorTerm": {"matchLabelExpressions": "atomic"},
    "core.v1.TopologySpreadConstraint": {"matchLabelKeys": "atomic"},
    "discovery.v1.Endpoint": {"addresses": "set"},
    "discovery.v1.EndpointHints": {"forNodes": "atomic", "forZones": "atomic"},
    "discovery.v1.EndpointSlice": {"endpoints": "atomic", "ports": "atomic"},
    "networking.v1.HTTPIngressRuleValue": {"paths": "atomic"},
    "networking.v1.IPBlock": {"except": "atomic"},
    "networking.v1.IngressLoadBalancerIngress": {"ports": "atomic"},
    "networking.v1.IngressLoadBalancerStatus": {"ingress": "atomic"},
    "networking.v1.IngressSpec": {"rules": "atomic", "tls": "atomic"},
    "networking.v1.IngressTLS": {"hosts": "atomic"},
    "networking.v1.NetworkPolicyEgressRule": {"ports": "atomic", "to": "atomic"},
    "networking.v1.NetworkPolicyIngressRule": {"from": "atomic", "ports": "atomic"},
    "networking.v1.NetworkPolicySpec": {"egress": "atomic", "ingress": "atomic", "policyTypes": "atomic"},
    "policy.v1.PodDisruptionBudgetSpec": {"selector": ("replace",)},
    "policy.v1.PodDisruptionBudgetStatus": {"conditions": ("merge", "type", "map", ("type",))},
    "rbac.v1.AggregationRule": {"clusterRoleSelectors": "atomic"},
    "rbac.v1.ClusterRole": {"rules": "atomic"},
    "rbac.v1.ClusterRoleBinding": {"subjects": "atomic"},
    "rbac.v1.PolicyRule": {"apiGroups": "atomic", "nonResourceURLs": "atomic", "resourceNames": "atomic",
        "resources": "atomic", "verbs": "atomic"},
    "rbac.v1.Role": {"rules": "atomic"},
    "rbac.v1.RoleBinding": {"subjects": "atomic"},
    "storage.v1.StorageClass": {"allowedTopologies": "atomic", "mountOptions": "atomic"},
    "meta.v1.DeleteOptions": {"dryRun": "atomic"},
    "meta.v1.LabelSelector": {"matchExpressions": "atomic"},
    "meta.v1.LabelSelectorRequirement": {"values": "atomic"},
    "meta.v1.ObjectMeta": {"finalizers": ("merge", "", "set"), "managedFields": "atomic",
        "ownerReferences": ("merge", "uid", "map", ("uid",))},
    "meta.v1.StatusDetails": {"causes": "atomic"},
}

REQUIRED_FACTS: dict[str, tuple[str, ...]] = {
    "apps.v1.ControllerRevision": ("revision",),
    "apps.v1.ControllerRevisionList": ("items",),
    "apps.v1.DaemonSet": (),
    "apps.v1.DaemonSetCondition": ("type", "status"),
    "apps.v1.DaemonSetList": ("items",),
    "apps.v1.DaemonSetSpec": ("selector", "template"),
    "apps.v1.DaemonSetStatus": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
        "numberReady"),
    "apps.v1.Deployment": (),
    "apps.v1.DeploymentCondition": ("type", "status"),
    "apps.v1.DeploymentList": ("items",),
    "apps.v1.DeploymentSpec": ("selector", "template"),
    "apps.v1.ReplicaSet": (),
    "apps.v1.ReplicaSetCondition": ("type", "status"),
    "apps.v1.ReplicaSetList": ("items",),
    "apps.v1.ReplicaSetSpec": ("selector",),
    "apps.v1.ReplicaSetStatus": ("replicas",),
    "apps.v1.StatefulSet": (),
    "apps.v1.StatefulSetCondition": ("type", "status"),
    "apps.v1.StatefulSetList": ("items",),
    "apps.v1.StatefulSetSpec": ("selector", "template"),
    "apps.v1.StatefulSetStatus": ("replicas",),
    "autoscaling.v1.CrossVersionObjectReference": ("kind", "name"),
    "autoscaling.v1.HorizontalPodAutoscaler": ("spec",),
    "autoscaling.v1.HorizontalPodAutoscalerList": ("items",),
    "autoscaling.v1.HorizontalPodAutoscalerSpec": ("scaleTargetRef", "maxReplicas"),
    "autoscaling.v1.HorizontalPodAutoscalerStatus": ("currentReplicas", "desiredReplicas"),
    "autoscaling.v1.ScaleStatus": ("replicas",),
    "autoscaling.v2.ContainerResourceMetricSource": ("name", "target", "container"),
    "autoscaling.v2.ContainerResourceMetricStatus": ("name", "current", "container"),
    "autoscaling.v2.CrossVersionObjectReference": ("kind", "name"),
    "autoscaling.v2.ExternalMetricSource": ("metric", "target"),
    "autoscaling.v2.ExternalMetricStatus": ("metric", "current"),
    "autoscaling.v2.HPAScalingPolicy": ("type", "value", "periodSeconds"),
    "autoscaling.v2.HorizontalPodAutoscaler": ("spec",),
    "autoscaling.v2.HorizontalPodAutoscalerCondition": ("type", "status"),
    "autoscaling.v2.HorizontalPodAutoscalerList": ("items",),
    "autoscaling.v2.HorizontalPodAutoscalerSpec": ("scaleTargetRef", "maxReplicas"),
    "autoscaling.v2.HorizontalPodAutoscalerStatus": ("desiredReplicas",),
    "autoscaling.v2.MetricIdentifier": ("name",),
    "autoscaling.v2.MetricSpec": ("type",),
    "autoscaling.v2.MetricStatus": ("type",),
    "autoscaling.v2.MetricTarget": ("type",),
    "autoscaling.v2.ObjectMetricSource": ("describedObject", "target", "metric"),
    "autoscaling.v2.ObjectMetricStatus": ("metric", "current", "describedObject"),
    "autoscaling.v2.PodsMetricSource": ("metric", "target"),
    "autoscaling.v2.PodsMetricStatus": ("metric", "current"),
    "autoscaling.v2.ResourceMetricSource": ("name", "target"),
    "autoscaling.v2.ResourceMetricStatus": ("name", "current"),
    "batch.v1.CronJob": ("spec",),
    "batch.v1.CronJobList": ("items",),
    "batch.v1.CronJobSpec": ("schedule", "jobTemplate"),
    "batch.v1.JobCondition": ("type", "status"),
    "batch.v1.JobList": ("items",),
    "batch.v1.JobSpec": ("template",),
    "batch.v1.PodFailurePolicy": ("rules",),
    "batch.v1.PodFailurePolicyOnExitCodesRequirement": ("operator", "values"),
    "batch.v1.PodFailurePolicyOnPodConditionsPattern": ("type",),
    "batch.v1.PodFailurePolicyRule": ("action",),
    "batch.v1.SuccessPolicy": ("rules",),
    "coordination.v1.LeaseList": ("items",),
    "core.v1.AWSElasticBlockStoreVolumeSource": ("volumeID",),
    "core.v1.AppArmorProfile": ("type",),
    "core.v1.AttachedVolume": ("name", "devicePath"),
    "core.v1.AzureDiskVolumeSource": ("diskName", "diskURI"),
    "core.v1.AzureFilePersistentVolumeSource": ("secretName", "shareName"),
    "core.v1.AzureFileVolumeSource": ("secretName", "shareName"),
    "core.v1.Binding": ("target",),
    "core.v1.CSIPersistentVolumeSource": ("driver", "volumeHandle"),
    "core.v1.CSIVolumeSource": ("driver",),
    "core.v1.CephFSPersistentVolumeSource": ("monitors",),
    "core.v1.CephFSVolumeSource": ("monitors",),
    "core.v1.CinderPersistentVolumeSource": ("volumeID",),
    "core.v1.CinderVolumeSource": ("volumeID",),
    "core.v1.ClusterTrustBundleProjection": ("path",),
    "core.v1.ConfigMapKeySelector": ("key",),
    "core.v1.ConfigMapList": ("items",),
    "core.v1.ConfigMapNodeConfigSource": ("namespace", "name", "kubeletConfigKey"),
    "core.v1.Container": ("name",),
    "core.v1.ContainerExtendedResourceRequest": ("containerName", "resourceName", "requestName"),
    "core.v1.ContainerPort": ("containerPort",),
    "core.v1.ContainerResizePolicy": ("resourceName", "restartPolicy"),
    "core.v1.ContainerRestartRule": ("action",),
    "core.v1.ContainerRestartRuleOnExitCodes": ("operator",),
    "core.v1.ContainerStateTerminated": ("exitCode",),
    "core.v1.ContainerStatus": ("name", "ready", "restartCount", "image", "imageID"),
    "core.v1.DaemonEndpoint": ("Port",),
    "core.v1.DownwardAPIVolumeFile": ("path",),
    "core.v1.EndpointAddress": ("ip",),
    "core.v1.EndpointPort": ("port",),
    "core.v1.EndpointsList": ("items",),
    "core.v1.EnvVar": ("name",),
    "core.v1.EphemeralContainer": ("name",),
    "core.v1.Event": ("metadata", "involvedObject"),
    "core.v1.EventList": ("items",),
    "core.v1.FileKeySelector": ("volumeName", "path", "key"),
    "core.v1.FlexPersistentVolumeSource": ("driver",),
    "core.v1.FlexVolumeSource": ("driver",),
    "core.v1.GCEPersistentDiskVolumeSource": ("pdName",),
    "core.v1.GRPCAction": ("port",),
    "core.v1.GitRepoVolumeSource": ("repository",),
    "core.v1.GlusterfsPersistentVolumeSource": ("endpoints", "path"),
    "core.v1.GlusterfsVolumeSource": ("endpoints", "path"),
    "core.v1.HTTPGetAction": ("port",),
    "core.v1.HTTPHeader": ("name", "value"),
    "core.v1.HostAlias": ("ip",),
    "core.v1.HostIP": ("ip",),
    "core.v1.HostPathVolumeSource": ("path",),
    "core.v1.ISCSIPersistentVolumeSource": ("targetPortal", "iqn", "lun"),
    "core.v1.ISCSIVolumeSource": ("targetPortal", "iqn", "lun"),
    "core.v1.ImageVolumeStatus": ("imageRef",),
    "core.v1.KeyToPath": ("key", "path"),
    "core.v1.LimitRangeItem": ("type",),
    "core.v1.LimitRangeList": ("items",),
    "core.v1.LimitRangeSpec": ("limits",),
    "core.v1.LinuxContainerUser": ("uid", "gid"),
    "core.v1.LocalVolumeSource": ("path",),
    "core.v1.ModifyVolumeStatus": ("status",),
    "core.v1.NFSVolumeSource": ("server", "path"),
    "core.v1.NamespaceCondition": ("type", "status"),
    "core.v1.NamespaceList": ("items",),
    "core.v1.NodeAddress": ("type", "address"),
    "core.v1.NodeAllocatableResourceClaimStatus": ("resourceClaimName",),
    "core.v1.NodeCondition": ("type", "status"),
    "core.v1.NodeList": ("items",),
    "core.v1.NodeSelector": ("nodeSelectorTerms",),
    "core.v1.NodeSelectorRequirement": ("key", "operator"),
    "core.v1.NodeSystemInfo": ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
        "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"),
    "core.v1.ObjectFieldSelector": ("fieldPath",),
    "core.v1.PersistentVolumeClaimCondition": ("type", "status"),
    "core.v1.PersistentVolumeClaimList": ("items",),
    "core.v1.PersistentVolumeClaimTemplate": ("spec",),
    "core.v1.PersistentVolumeClaimVolumeSource": ("claimName",),
    "core.v1.PersistentVolumeList": ("items",),
    "core.v1.PhotonPersistentDiskVolumeSource": ("pdID",),
    "core.v1.PodAffinityTerm": ("topologyKey",),
    "core.v1.PodCertificateProjection": ("signerName", "keyType"),
    "core.v1.PodCondition": ("type", "status"),
    "core.v1.PodExtendedResourceClaimStatus": ("requestMappings", "resourceClaimName"),
    "core.v1.PodIP": ("ip",),
    "core.v1.PodList": ("items",),
    "core.v1.PodOS": ("name",),
    "core.v1.PodReadinessGate": ("conditionType",),
    "core.v1.PodResourceClaim": ("name",),
    "core.v1.PodResourceClaimStatus": ("name",),
    "core.v1.PodSchedulingGate": ("name",),
    "core.v1.PodSpec": ("containers",),
    "core.v1.PodTemplateList": ("items",),
    "core.v1.PortStatus": ("port", "protocol"),
    "core.v1.PortworxVolumeSource": ("volumeID",),
    "core.v1.PreferredSchedulingTerm": ("weight", "preference"),
    "core.v1.QuobyteVolumeSource": ("registry", "volume"),
    "core.v1.RBDPersistentVolumeSource": ("monitors", "image"),
    "core.v1.RBDVolumeSource": ("monitors", "image"),
    "core.v1.ReplicationControllerCondition": ("type", "status"),
    "core.v1.ReplicationControllerList": ("items",),
    "core.v1.ReplicationControllerStatus": ("replicas",),
    "core.v1.ResourceClaim": ("name",),
    "core.v1.ResourceFieldSelector": ("resource",),
    "core.v1.ResourceHealth": ("resourceID",),
    "core.v1.ResourceQuotaList": ("items",),
    "core.v1.ResourceStatus": ("name",),
    "core.v1.ScaleIOPersistentVolumeSource": ("gateway", "system", "secretRef"),
    "core.v1.ScaleIOVolumeSource": ("gateway", "system", "secretRef"),
    "core.v1.ScopedResourceSelectorRequirement": ("scopeName", "operator"),
    "core.v1.SeccompProfile": ("type",),
    "core.v1.SecretKeySelector": ("key",),
    "core.v1.SecretList": ("items",),
    "core.v1.ServiceAccountList": ("items",),
    "core.v1.ServiceAccountTokenProjection": ("path",),
    "core.v1.ServiceList": ("items",),
    "core.v1.ServicePort": ("port",),
    "core.v1.SleepAction": ("seconds",),
    "core.v1.Sysctl": ("name", "value"),
    "core.v1.TCPSocketAction": ("port",),
    "core.v1.Taint": ("key", "effect"),
    "core.v1.TopologySelectorLabelRequirement": ("key", "values"),
    "core.v1.TopologySpreadConstraint": ("maxSkew", "topologyKey", "whenUnsatisfiable"),
    "core.v1.TypedLocalObjectReference": ("kind", "name"),
    "core.v1.TypedObjectReference": ("kind", "name"),
    "core.v1.Volume": ("name",),
    "core.v1.VolumeDevice": ("name", "devicePath"),
    "core.v1.VolumeMount": ("name", "mountPath"),
    "core.v1.VolumeMountStatus": ("name", "mountPath"),
    "core.v1.VsphereVirtualDiskVolumeSource": ("volumePath",),
    "core.v1.WeightedPodAffinityTerm": ("weight", "podAffinityTerm"),
    "discovery.v1.Endpoint": ("addresses",),
    "discovery.v1.EndpointSlice": ("addressType",),
    "discovery.v1.EndpointSliceList": ("items",),
    "discovery.v1.ForNode": ("name",),
    "discovery.v1.ForZone": ("name",),
    "events.v1.Event": ("eventTime",),
    "events.v1.EventList": ("items",),
    "events.v1.EventSeries": ("count", "lastObservedTime"),
    "networking.v1.HTTPIngressPath": ("pathType", "backend"),
    "networking.v1.HTTPIngressRuleValue": ("paths",),
    "networking.v1.IPBlock": ("cidr",),
    "networking.v1.IngressClassList": ("items",),
    "networking.v1.IngressClassParametersReference": ("kind", "name"),
    "networking.v1.IngressList": ("items",),
    "networking.v1.IngressPortStatus": ("port", "protocol"),
    "networking.v1.IngressServiceBackend": ("name",),
    "networking.v1.NetworkPolicyList": ("items",),
    "policy.v1.PodDisruptionBudgetList": ("items",),
    "rbac.v1.ClusterRoleBinding": ("roleRef",),
    "rbac.v1.ClusterRoleBindingList": ("items",),
    "rbac.v1.ClusterRoleList": ("items",),
    "rbac.v1.PolicyRule": ("verbs",),
    "rbac.v1.RoleBinding": ("roleRef",),
    "rbac.v1.RoleBindingList": ("items",),
    "rbac.v1.RoleList": ("items",),
    "rbac.v1.RoleRef": ("kind", "name"),
    "rbac.v1.Subject": ("kind", "name"),
    "scheduling.v1.PriorityClassList": ("items",),
    "storage.v1.StorageClass": ("provisioner",),
    "storage.v1.StorageClassList": ("items",),
    "meta.v1.Condition": ("type", "status", "lastTransitionTime", "reason", "message"),
    "meta.v1.LabelSelectorRequirement": ("key", "operator"),
    "meta.v1.OwnerReference": ("apiVersion", "kind", "name", "uid"),
    "meta.v1.ShardInfo": ("selector",),
    "meta.v1.WatchEvent": ("type", "object"),
}

SPECIAL_FIELDS: dict[str, dict[str, str]] = {
    "apps.v1.ControllerRevision": {"data": "RawExtension"},
    "apps.v1.RollingUpdateDaemonSet": {"maxSurge": "IntOrString", "maxUnavailable": "IntOrString"},
    "apps.v1.RollingUpdateDeployment": {"maxSurge": "IntOrString", "maxUnavailable": "IntOrString"},
    "apps.v1.RollingUpdateStatefulSetStrategy": {"maxUnavailable": "IntOrString"},
    "autoscaling.v2.HPAScalingRules": {"tolerance": "Quantity"},
    "autoscaling.v2.MetricTarget": {"averageValue": "Quantity", "value": "Quantity"},
    "autoscaling.v2.MetricValueStatus": {"averageValue": "Quantity", "value": "Quantity"},
    "coordination.v1.LeaseSpec": {"acquireTime": "MicroTime", "renewTime": "MicroTime"},
    "core.v1.ContainerStatus": {"allocatedResources": "Quantity"},
    "core.v1.EmptyDirVolumeSource": {"sizeLimit": "Quantity"},
    "core.v1.Event": {"eventTime": "MicroTime"},
    "core.v1.EventSeries": {"lastObservedTime": "MicroTime"},
    "core.v1.HTTPGetAction": {"port": "IntOrString"},
    "core.v1.LimitRangeItem": {"default": "Quantity", "defaultRequest": "Quantity", "max": "Quantity",
        "maxLimitRequestRatio": "Quantity", "min": "Quantity"},
    "core.v1.NodeStatus": {"allocatable": "Quantity", "capacity": "Quantity"},
    "core.v1.PersistentVolumeClaimStatus": {"allocatedResources": "Quantity", "capacity": "Quantity"},
    "core.v1.PersistentVolumeSpec": {"capacity": "Quantity"},
    "core.v1.PodSpec": {"overhead": "Quantity"},
    "core.v1.PodStatus": {"allocatedResources": "Quantity"},
    "core.v1.ResourceFieldSelector": {"divisor": "Quantity"},
    "core.v1.ResourceQuotaSpec": {"hard": "Quantity"},
    "core.v1.ResourceQuotaStatus": {"hard": "Quantity", "used": "Quantity"},
    "core.v1.ResourceRequirements": {"limits": "Quantity", "requests": "Quantity"},
    "core.v1.ServicePort": {"targetPort": "IntOrString"},
    "core.v1.TCPSocketAction": {"port": "IntOrString"},
    "core.v1.VolumeResourceRequirements": {"limits": "Quantity", "requests": "Quantity"},
    "events.v1.Event": {"eventTime": "MicroTime"},
    "events.v1.EventSeries": {"lastObservedTime": "MicroTime"},
    "networking.v1.NetworkPolicyPort": {"port": "IntOrString"},
    "policy.v1.PodDisruptionBudgetSpec": {"maxUnavailable": "IntOrString", "minAvailable": "IntOrString"},
    "meta.v1.ManagedFieldsEntry": {"fieldsV1": "FieldsV1"},
    "meta.v1.WatchEvent": {"object": "RawExtension"},
}

ATOMIC_STRUCTS: frozenset[str] = frozenset({
    "autoscaling.v1.CrossVersionObjectReference", "core.v1.ConfigMapKeySelector", "core.v1.EndpointAddress",
    "core.v1.EndpointPort", "core.v1.FileKeySelector", "core.v1.LocalObjectReference", "core.v1.NodeSelector",
    "core.v1.NodeSelectorTerm", "core.v1.ObjectFieldSelector", "core.v1.ObjectReference",
    "core.v1.ResourceFieldSelector", "core.v1.ScopeSelector", "core.v1.SecretKeySelector",
    "core.v1.SecretReference", "core.v1.TopologySelectorTerm", "core.v1.TypedLocalObjectReference",
    "discovery.v1.EndpointPort", "networking.v1.ServiceBackendPort", "rbac.v1.RoleRef", "rbac.v1.Subject",
    "meta.v1.LabelSelector", "meta.v1.OwnerReference",
})


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------

_CLASS_RE = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:(?:alpha|beta)\d+)?)([A-Z]\w*)$")
_CLASS_IN_TYPE = re.compile(r"\b((?:[A-Z][a-z]+)?V\d+(?:(?:alpha|beta)\d+)?[A-Z]\w*)\b")


def full_name(short: str) -> str:
    if short.startswith("meta."):
        return "io.k8s.apimachinery.pkg.apis." + short
    return "io.k8s.api." + short


def group_package(group: str) -> str:
    return "core" if not group else group.split(".")[0]


def definition_name(cls_name: str, context_pkg: str) -> str:
    """Kubernetes definition name of client class ``cls_name`` referenced from ``context_pkg``."""
    m = _CLASS_RE.match(cls_name)
    if not m:
        raise ValueError(f"unexpected client class name {cls_name!r}")
    prefix, ver, kind = m.groups()
    ver = ver.lower()
    if prefix:
        return f"io.k8s.api.{PREFIX_PACKAGES[prefix]}.{ver}.{kind}"
    if kind in META_KINDS:
        return META + kind
    if kind in CORE_SHARED:
        return f"io.k8s.api.core.{ver}.{kind}"
    if kind in OTHER_GROUP_KINDS:
        return f"io.k8s.api.{OTHER_GROUP_KINDS[kind]}.{ver}.{kind}"
    base = context_pkg.rsplit(".", 1)[0]
    return f"{base}.{ver}.{kind}"


class Generator:
    def __init__(self) -> None:
        from kubernetes.client import models

        self.models = models
        self.defs: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, str] = {}
        self.patch = {full_name(k): v for k, v in PATCH_FACTS.items()}
        self.required = {full_name(k): v for k, v in REQUIRED_FACTS.items()}
        self.special = {full_name(k): v for k, v in SPECIAL_FIELDS.items()}
        self.atomic = {full_name(k) for k in ATOMIC_STRUCTS}

    # -- roots ---------------------------------------------------------------
    def root_class(self, group: str, version: str, kind: str) -> str:
        pkg = group_package(group)
        ver = version.capitalize()
        if kind in META_KINDS:
            return "V1" + kind
        candidates = [pkg.capitalize() + ver + kind, ver + kind]
        for c in candidates:
            if hasattr(self.models, c):
                return c
        raise LookupError(f"no client model for {group}/{version} {kind}")

    def add_kind(self, group: str, version: str, kind: str) -> str:
        pkg = f"io.k8s.api.{group_package(group)}.{version}"
        name = self.visit(self.root_class(group, version, kind), pkg)
        gvk = {"group": group, "kind": kind, "version": version}
        lst = self.defs[name].setdefault("x-kubernetes-group-version-kind", [])
        if gvk not in lst:
            lst.append(gvk)
        return name

    # -- walking -------------------------------------------------------------
    def visit(self, cls_name: str, context_pkg: str) -> str:
        name = definition_name(cls_name, context_pkg)
        if name in self.classes:
            if self.classes[name] != cls_name:
                raise ValueError(f"{name} maps to both {self.classes[name]} and {cls_name}")
            return name
        self.classes[name] = cls_name
        cls = getattr(self.models, cls_name)
        schema: dict[str, Any] = {"type": "object"}
        self.defs[name] = schema  # registered before recursing (types are recursive)
        pkg = name.rsplit(".", 1)[0]
        props: dict[str, Any] = {}
        for attr, typ in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            special = self.special.get(name, {}).get(json_name)
            prop = self.prop_schema(typ, pkg, special)
            fact = self.patch.get(name, {}).get(json_name)
            if fact is not None:
                self.apply_fact(prop, fact)
            props[json_name] = prop
        schema["properties"] = dict(sorted(props.items()))
        if name in self.required:
            req = list(self.required[name])
        else:
            req = [cls.attribute_map[a] for a, f in cls.model_fields.items()
                   if f.is_required() and a in cls.attribute_map]
        if req:
            schema["required"] = req
        if name in self.atomic:
            schema["x-kubernetes-map-type"] = "atomic"
        return name

    def prop_schema(self, typ: str, pkg: str, special: str | None) -> dict[str, Any]:
        typ = typ.strip()
        if typ.startswith("List[") and typ.endswith("]"):
            return {"type": "array", "items": self.prop_schema(typ[5:-1], pkg, special)}
        if typ.startswith("Dict[") and typ.endswith("]"):
            value = typ[5:-1].split(",", 1)[1]
            return {"type": "object", "additionalProperties": self.prop_schema(value, pkg, special)}
        if special is not None:
            return {"$ref": REF + SPECIAL_NAMES[special]}
        if typ == "str":
            return {"type": "string"}
        if typ == "int":
            return {"type": "integer"}
        if typ == "float":
            return {"type": "number"}
        if typ == "bool":
            return {"type": "boolean"}
        if typ == "bytes":
            return {"type": "string", "format": "byte"}
        if typ == "datetime":
            return {"$ref": REF + META + "Time"}
        if typ == "object":
            return {"type": "object"}
        if _CLASS_IN_TYPE.fullmatch(typ):
            return {"$ref": REF + self.visit(typ, pkg)}
        raise ValueError(f"unhandled client type {typ!r}")

    @staticmethod
    def apply_fact(prop: dict[str, Any], fact: Fact) -> None:
        if isinstance(fact, str):
            key = "x-kubernetes-list-type" if prop.get("type") == "array" else "x-kubernetes-map-type"
            prop[key] = fact
            return
        strategy, merge_key, list_type, map_keys, map_type = (tuple(fact) + ("", "", "", (), ""))[:5]
        if strategy:
            prop["x-kubernetes-patch-strategy"] = strategy
        if merge_key:
            prop["x-kubernetes-patch-merge-key"] = merge_key
        if list_type:
            prop["x-kubernetes-list-type"] = list_type
        if map_keys:
            prop["x-kubernetes-list-map-keys"] = list(map_keys)
        if map_type:
            prop["x-kubernetes-map-type"] = map_type

    # -- whole ---------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        gvs: list[tuple[str, str]] = []
        for r in REGISTRY.resources:
            self.add_kind(r.group, r.version, r.kind)
            if "list" in r.verbs:
                self.add_kind(r.group, r.version, r.list_kind)
            if (r.group, r.version) not in gvs:
                gvs.append((r.group, r.version))
        for g, v, k in EXTRA_KINDS:
            self.add_kind(g, v, k)
        for g, v, _ in EXTRA_KINDS:
            if (g, v) not in gvs:
                gvs.append((g, v))
        for kind in ALL_GV_KINDS:
            for g, v in gvs:
                self.add_kind(g, v, kind)
        for name, schema in SCALAR_DEFS.items():
            self.defs[name] = dict(schema)
        missing = [f"{d}.{f}" for table in (self.patch, self.special) for d, fs in table.items()
                   if d in self.defs for f in fs if f not in self.defs[d].get("properties", {})]
        if missing:
            print("warning: facts for fields the client lacks:", ", ".join(missing), file=sys.stderr)
        for name, schema in self.defs.items():
            if "description" not in schema:
                schema["description"] = describe(name, schema)
            describe_fields(name, schema)
        return {"definitions": dict(sorted(self.defs.items()))}


# Short descriptions (k8py's own wording) of fields every kind shares.
COMMON_FIELD_DOCS = {
    "apiVersion": "Group and version of this object's schema, e.g. apps/v1.",
    "kind": "Type of this object, in CamelCase, e.g. Deployment.",
    "metadata": "Standard object metadata: name, namespace, labels, annotations, ...",
    "spec": "Desired state of the object, set by its user.",
    "status": "Observed state of the object, written by the system. Read-only for users.",
    "items": "The objects of this list.",
}
LIST_METADATA_DOC = "Standard list metadata: resourceVersion and the continue token."


def describe(name: str, schema: dict[str, Any]) -> str:
    gvks = schema.get("x-kubernetes-group-version-kind")
    pkg, short = name.rsplit(".", 1)
    if gvks and len(gvks) == 1:
        g = gvks[0]
        gv = f"{g['group']}/{g['version']}" if g["group"] else g["version"]
        if short.endswith("List") and "items" in schema.get("properties", {}):
            return f"A list of {short[:-4]} objects ({gv})."
        return f"The {short} kind of {gv}."
    if pkg.startswith("io.k8s.api."):
        group, version = pkg[len("io.k8s.api."):].rsplit(".", 1)
        return f"{short} ({group}/{version})."
    return ""


def describe_fields(name: str, schema: dict[str, Any]) -> None:
    props = schema.get("properties", {})
    is_kind = bool(schema.get("x-kubernetes-group-version-kind"))
    for fname, doc in COMMON_FIELD_DOCS.items():
        prop = props.get(fname)
        if prop is None or "description" in prop:
            continue
        if fname in ("spec", "status", "items") and not is_kind:
            continue
        if fname == "metadata" and prop.get("$ref", "").endswith(".ListMeta"):
            doc = LIST_METADATA_DOC
        prop["description"] = doc


def main() -> None:
    doc = Generator().run()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"), sort_keys=False)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({len(doc['definitions'])} definitions, {len(text)} bytes)")


if __name__ == "__main__":
    main()
