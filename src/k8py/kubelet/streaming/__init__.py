"""The kubelet's streaming protocols: what `kubectl logs/exec/attach/port-forward`
speak to a node, through the API server's proxy.

    spdy.py           SPDY/3.1 framing (zlib header blocks with the SPDY/3 dictionary)
                      and a server-side connection of streams (kube's httpstream/spdy)
    wsstream.py       WebSocket channel protocols: channel.k8s.io, v2..v5 and base64
                      variants (kube's apimachinery wsstream)
    hijack.py         take an aiohttp request's connection over after a 101 answer
    remotecommand.py  exec/attach over SPDY or WebSocket (kube's remotecommand server)
    portforward.py    port-forward over SPDY, WebSocket channels, and SPDY tunnelled in
                      WebSocket binary messages (kubectl >= 1.31)
    logs.py           containerLogs: CRI log files read with tail/since/follow/limit
"""
