"""``k8py scheduler``: kube-scheduler's queue, framework and plugins."""
