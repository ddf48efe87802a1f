"""``k8py proxy``: the service proxy (kube-proxy in nftables mode).

``proxier.py`` turns Services and EndpointSlices into one nftables table
(kube's pkg/proxy/nftables layout) and applies it with ``nft -f`` in a
single transaction; ``servicelb.py`` fills in LoadBalancer status as k3s's
ServiceLB does; ``app.py`` wires informers, the sync loop and the flags."""
