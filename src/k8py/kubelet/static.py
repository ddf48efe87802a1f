"""Static pods: pod manifests in a folder (``--pod-manifest-path``), run by
the kubelet without the API server, as kubeadm runs its control plane.

Like kubelet's file source: every ``*.yaml``/``*.yml``/``*.json`` file
(hidden files skipped) holds one Pod; its name gets ``-<node name>``
appended, the namespace defaults to ``default``, ``spec.nodeName`` is set,
and its uid is a hash of the manifest and the node name, also written as
the ``kubernetes.io/config.hash`` annotation, so an edited file is a new
pod.  The API sees each static pod through a *mirror pod* of the same
name, with ``kubernetes.io/config.mirror`` set to that hash and the Node
as owner; the kubelet writes the static pod's status there.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import uuid
from typing import Any

import yaml

log = logging.getLogger(__name__)
Obj = dict[str, Any]
MIRROR = "kubernetes.io/config.mirror"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_SEEN = "kubernetes.io/config.seen"


def static_pod(manifest: Obj, node_name: str, source: str) -> Obj:
    if manifest.get("kind") != "Pod":
        raise ValueError(f"{source}: kind {manifest.get('kind')!r}, want Pod")
    pod = copy.deepcopy(manifest)
    md = pod.setdefault("metadata", {})
    if not md.get("name"):
        raise ValueError(f"{source}: metadata.name is required")
    md["name"] = f"{md['name']}-{node_name}"
    md.setdefault("namespace", "default")
    digest = hashlib.md5(json.dumps([manifest, node_name], sort_keys=True).encode()).hexdigest()
    md["uid"] = str(uuid.UUID(digest))
    ann = md.setdefault("annotations", {})
    ann[CONFIG_HASH] = digest
    ann[CONFIG_SOURCE] = "file"
    spec = pod.setdefault("spec", {})
    spec["nodeName"] = node_name
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        c.setdefault("terminationMessagePath", "/dev/termination-log")
    pod.setdefault("status", {"phase": "Pending"})
    return pod


def read_manifests(path: str, node_name: str) -> dict[str, Obj]:
    """uid -> static pod for every manifest in `path` (a bad file is logged and skipped)."""
    out: dict[str, Obj] = {}
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return out
    for n in names:
        if n.startswith(".") or not n.endswith((".yaml", ".yml", ".json")):
            continue
        p = os.path.join(path, n)
        try:
            with open(p) as f:
                manifest = yaml.safe_load(f)
            pod = static_pod(manifest, node_name, p)
        except (OSError, ValueError, yaml.YAMLError, AttributeError) as e:
            log.warning("static pod manifest %s: %s", p, e)
            continue
        out[pod["metadata"]["uid"]] = pod
    return out


def mirror_pod(pod: Obj, node_name: str, node_uid: str) -> Obj:
    m = copy.deepcopy(pod)
    md = m["metadata"]
    md.pop("uid", None)
    md.pop("resourceVersion", None)
    md["annotations"][MIRROR] = md["annotations"][CONFIG_HASH]
    md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid,
                              "controller": True}]
    m.pop("status", None)
    m["apiVersion"], m["kind"] = "v1", "Pod"
    return m
