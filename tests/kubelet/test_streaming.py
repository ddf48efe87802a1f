"""The streaming protocols' pieces: SPDY/3 framing and header compression, the
WebSocket channel framing, exec over raw SPDY against the kubelet server, and
port-forward's dial inside a real network namespace (root)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import uuid
import zlib

import pytest

from k8py.apiserver.certs import ClusterCerts
from k8py.kubelet.streaming import spdy, wsstream
from k8py.kubelet.streaming.portforward import dial
from tests.kubelet.test_server import FakeHost, KubeletThread


def test_spdy_dictionary_is_spdy3s():
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2  # the dictionary id in every header block's zlib header


def test_spdy_header_blocks_round_trip_on_one_zlib_stream():
    c, d = spdy.HeaderCompressor(), spdy.HeaderDecompressor()
    first = c.compress([("streamType", "error"), ("port", "80"), ("requestID", "0")])
    assert first[:2] == b"\x78\xf9"  # zlib header with FDICT set
    assert d.decompress(first) == {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}
    second = c.compress([("streamType", "data"), ("port", "80"), ("requestID", "0"), ("x", "a"), ("x", "b")])
    assert d.decompress(second) == {"streamtype": ["data"], "port": ["80"], "requestid": ["0"], "x": ["a", "b"]}
    # a plain zlib inflater with the dictionary reads our blocks (what Go's zlib.NewReaderDict does)
    z = zlib.decompressobj(zdict=spdy.DICTIONARY)
    block = z.decompress(first)
    assert struct.unpack(">I", block[:4]) == (3,)


def test_spdy_frames():
    f = spdy.control_frame(spdy.SYN_REPLY, 0, b"abcd")
    assert f[:8] == bytes([0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04])
    f = spdy.data_frame(5, spdy.FLAG_FIN, b"xy")
    assert f == bytes([0, 0, 0, 5, 1, 0, 0, 2]) + b"xy"


def _syn_stream(z: spdy.HeaderCompressor, sid: int, headers: list[tuple[str, str]], fin: bool = False) -> bytes:
    return spdy.control_frame(spdy.SYN_STREAM, spdy.FLAG_FIN if fin else 0,
                              struct.pack(">IIH", sid, 0, 0) + z.compress(headers))


def test_spdy_connection_streams_ping_and_goaway():
    async def main() -> None:
        reader = asyncio.StreamReader()
        sent: list[bytes] = []

        async def write(b: bytes) -> None:
            sent.append(b)
        conn = spdy.SpdyConnection(reader, write)
        run = asyncio.create_task(conn.run())
        z = spdy.HeaderCompressor()
        reader.feed_data(_syn_stream(z, 1, [("streamType", "stdin")]))
        reader.feed_data(spdy.data_frame(1, 0, b"hello") + spdy.data_frame(1, spdy.FLAG_FIN, b""))
        reader.feed_data(spdy.control_frame(spdy.PING, 0, struct.pack(">I", 7)))
        s = await conn.accept()
        assert s is not None and s.id == 1 and s.headers["streamtype"] == "stdin"
        assert await s.read_all() == b"hello"
        await s.write(b"out")
        await s.close()
        reader.feed_data(spdy.control_frame(spdy.GOAWAY, 0, struct.pack(">II", 0, 0)))
        await run
        assert await conn.accept() is None
        kinds = [(b[0] & 0x80, struct.unpack(">H", b[2:4])[0]) for b in sent]
        assert kinds[0] == (0x80, spdy.SYN_REPLY)
        assert (0x80, spdy.PING) in kinds and spdy.control_frame(spdy.PING, 0, struct.pack(">I", 7)) in sent
        assert spdy.data_frame(1, 0, b"out") in sent and spdy.data_frame(1, spdy.FLAG_FIN, b"") in sent
    asyncio.run(main())


def test_websocket_channel_framing():
    v4 = wsstream.parse_protocol("v4.channel.k8s.io")
    b64 = wsstream.parse_protocol("v4.base64.channel.k8s.io")
    v5 = wsstream.parse_protocol("v5.channel.k8s.io")
    old = wsstream.parse_protocol("channel.k8s.io")
    assert v5.close_signal and not v4.close_signal and v4.json_status and not old.json_status and not old.resize
    assert wsstream.encode(v4, 1, b"hi") == b"\x01hi"
    assert wsstream.decode(v4, b"\x02err") == (2, b"err")
    assert wsstream.decode(v4, "\x00text frame") == (0, b"text frame")  # the Python client's str data
    assert wsstream.encode(b64, 1, b"hi") == "1aGk="
    assert wsstream.decode(b64, "0aGk=") == (0, b"hi")


def test_exec_over_raw_spdy_with_tty_resize():
    """A minimal SPDY client (our framing) against the kubelet server: the
    streams kubectl opens, a resize, the v4 exit status."""
    d = tempfile.mkdtemp(prefix="k8py-spdy-")
    certs = ClusterCerts(d)
    certs.ensure()
    k = KubeletThread(FakeHost(os.path.join(d, "root")), os.path.join(d, "tls"), str(certs.ca_crt))

    async def main() -> tuple[bytes, dict]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.load_cert_chain(str(certs.kubelet_client_crt), str(certs.kubelet_client_key))
        r, w = await asyncio.open_connection("127.0.0.1", k.port, ssl=ctx)
        w.write(b"POST /exec/default/web/main?command=sh&command=-c&command=stty+size%3Bexit+4&output=1&tty=1 "
                b"HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n")
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101") and b"X-Stream-Protocol-Version: v4.channel.k8s.io" in head
        z = spdy.HeaderCompressor()
        w.write(_syn_stream(z, 1, [("streamType", "error")], fin=True))
        w.write(_syn_stream(z, 3, [("streamType", "stdout")], fin=True))
        w.write(_syn_stream(z, 5, [("streamType", "resize")]))
        w.write(spdy.data_frame(5, 0, json.dumps({"Width": 91, "Height": 17}).encode() + b"\n"))
        streams: dict[int, bytes] = {1: b"", 3: b""}
        fins: set[int] = set()
        while fins != {1, 3}:
            w1, w2 = struct.unpack(">II", await r.readexactly(8))
            payload = await r.readexactly(w2 & 0xFFFFFF)
            if not w1 & 0x80000000:
                streams[w1] += payload
                if (w2 >> 24) & spdy.FLAG_FIN:
                    fins.add(w1)
        w.close()
        return streams[3], json.loads(streams[1])

    try:
        out, status = asyncio.run(main())
    finally:
        k.close()
        shutil.rmtree(d, ignore_errors=True)
    assert b"17 91" in out
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "4"


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_dial_inside_a_network_namespace():
    name = f"k8py-pf-{uuid.uuid4().hex[:8]}"
    before = os.readlink("/proc/thread-self/ns/net")
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = None
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        code = ("import socket\ns=socket.socket();s.bind(('127.0.0.1',7070));s.listen(1);print('ready',flush=True)\n"
                "c,_=s.accept();c.sendall(b'in-ns:'+c.recv(100));c.close()")
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert server.stdout.readline() == b"ready\n"

        async def main() -> bytes:
            r, w = await dial(f"/run/netns/{name}", 7070)
            w.write(b"hi")
            data = await r.read(100)
            w.close()
            with pytest.raises(OSError):  # nothing listens there
                await dial(f"/run/netns/{name}", 7071)
            return data
        assert asyncio.run(main()) == b"in-ns:hi"
        # the calling thread never changed namespace
        assert os.readlink("/proc/thread-self/ns/net") == before
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)
