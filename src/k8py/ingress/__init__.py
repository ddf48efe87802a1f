"""The k8py Ingress controller (``k8py ingress``): an HTTP(S) reverse proxy
serving networking.k8s.io/v1 Ingresses of the IngressClasses whose
``spec.controller`` is ours, as ingress-nginx or k3s's Traefik do.

rules.py       the routing table (hosts, paths, backends, TLS certificates),
               built whole from Ingresses, Services, EndpointSlices and Secrets
proxy.py       the proxy itself (asyncio streams, HTTP/1.1, keep-alive to
               clients and to pods, Upgrade pass-through, SNI)
controller.py  informers -> a new table swapped in atomically; IngressClass
               creation; status.loadBalancer
app.py         flags and ``main`` for ``k8py ingress``"""
