"""Hollow nodes: simulated kubelets (like Kubernetes' kubemark) that register
Nodes, keep their Leases and status fresh, and take the pods bound to them
through the lifecycle a kubelet reports, without running anything."""
