"""The kubelet: the node agent that runs pods (issue 4)."""
