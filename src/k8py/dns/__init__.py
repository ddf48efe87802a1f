"""The cluster DNS (``k8py dns``): CoreDNS's kubernetes plugin semantics,
served from response templates compiled on watch events."""
