"""Volumes and the kubelet's per-pod files (see manager.py for the whole story).

    from k8py.kubelet.volumes import VolumeManager, VolumeError
"""

from k8py.kubelet.volumes.atomic_writer import AtomicWriter, FileProjection
from k8py.kubelet.volumes.manager import VolumeError, VolumeManager, check_host_path
from k8py.kubelet.volumes.podfiles import (pod_dns_config, pod_hostname_and_domain, write_etc_hosts,
                                           write_resolv_conf)

__all__ = [
    "AtomicWriter",
    "FileProjection",
    "VolumeError",
    "VolumeManager",
    "check_host_path",
    "pod_dns_config",
    "pod_hostname_and_domain",
    "write_etc_hosts",
    "write_resolv_conf",
]
