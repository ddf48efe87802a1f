"""Decoding Kubernetes protobuf bodies (k8py.api.protobuf).

Fixtures in data/protobuf/ are request bodies captured from the real kubectl
(1.32/1.33 send built-in objects from typed clients as protobuf).  Each ``<case>.pb``
is compared with ``<case>.json``: the ``--dry-run=client -o json`` output of the same
command where kubectl has one, otherwise the JSON body kubectl 1.27 sends for it
(see ``cases.json`` for the exact command, request line and any edits).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from k8py.api import protobuf as pb
from k8py.api import protobuf_schema as schema

DATA = Path(__file__).parent / "data" / "protobuf"
CASES: dict[str, dict[str, Any]] = json.loads((DATA / "cases.json").read_text())


# ---------------------------------------------------------------------------
# A tiny protobuf writer for hand-made messages
# ---------------------------------------------------------------------------


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vi(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def ld(num: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def f64(num: int, value: float) -> bytes:
    return varint(num << 3 | 1) + struct.pack("<d", value)


def f32(num: int, value: int) -> bytes:
    return varint(num << 3 | 5) + struct.pack("<I", value)


def envelope(api_version: str, kind: str, raw: bytes, *extra: bytes) -> bytes:
    type_meta = ld(1, api_version) + ld(2, kind)
    return pb.MAGIC + ld(1, type_meta) + ld(2, raw) + b"".join(extra)


def entry(key: str, value: bytes | None) -> bytes:
    return ld(1, key) + (value if value is not None else b"")


# ---------------------------------------------------------------------------
# Captured kubectl bodies
# ---------------------------------------------------------------------------


def assert_same_order(a: Any, b: Any, path: str = "") -> None:
    """Key order equal everywhere (Go encodes struct fields in declaration order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        # Go sorts map keys; our maps keep wire order (also sorted by gogo), so only
        # compare the order of keys both sides have.
        assert list(a) == list(b), f"key order differs at {path or '/'}"
        for k in a:
            assert_same_order(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_order(x, y, f"{path}[{i}]")


@pytest.mark.parametrize("case", sorted(CASES))
def test_kubectl_capture(case: str) -> None:
    meta = CASES[case]
    body = (DATA / f"{case}.pb").read_bytes()
    expected = json.loads((DATA / f"{case}.json").read_text())
    assert meta["request"]["contentType"] == pb.CONTENT_TYPE
    got = pb.decode(body)
    assert got == expected
    assert_same_order(got, expected)
    assert pb.supports(got["apiVersion"], got["kind"])


def test_capture_request_lines() -> None:
    # What the API server has to accept: protobuf bodies on create/update, and a
    # protobuf-first Accept header (a JSON answer is fine, client-go decodes by the
    # response Content-Type).
    for meta in CASES.values():
        req = meta["request"]
        assert req["accept"] == "application/vnd.kubernetes.protobuf,application/json"
        assert req["method"] in ("POST", "PUT", "DELETE")
    assert CASES["certificate-approve"]["request"]["path"].endswith("/certificatesigningrequests/csr-rich/approval")
    assert CASES["token"]["request"]["path"] == "/api/v1/namespaces/default/serviceaccounts/sa1/token"


def test_capture_details() -> None:
    dep = pb.decode((DATA / "deployment-cmd.pb").read_bytes())
    assert dep["spec"]["replicas"] == 0  # optional (pointer) zero survives
    assert dep["metadata"]["creationTimestamp"] is None
    assert dep["status"] == {} and dep["spec"]["strategy"] == {}
    cm = pb.decode((DATA / "configmap.pb").read_bytes())
    assert set(cm["data"]) == {"a", "c", "text.txt"}
    assert len(base64.b64decode(cm["binaryData"]["bin"])) == 64
    agg = pb.decode((DATA / "clusterrole-agg.pb").read_bytes())
    assert agg["rules"] is None  # nil slice without omitempty -> null, like Go
    pdb = pb.decode((DATA / "pdb-max.pb").read_bytes())
    assert pdb["spec"]["maxUnavailable"] == "50%"
    assert pb.decode((DATA / "pdb-min.pb").read_bytes())["spec"]["minAvailable"] == 1
    pc = pb.decode((DATA / "priorityclass-zero.pb").read_bytes())
    assert pc["value"] == 0 and pc["globalDefault"] is True
    q = pb.decode((DATA / "quota.pb").read_bytes())
    assert q["spec"]["hard"] == {"cpu": "1", "memory": "1Gi", "pods": "10", "requests.storage": "500m"}
    job = pb.decode((DATA / "job-from-rich-cronjob.pb").read_bytes())
    spec = job["spec"]["template"]["spec"]
    assert spec["priority"] == -10 and spec["activeDeadlineSeconds"] == -5
    assert spec["securityContext"]["supplementalGroups"] == [1, 2, 4294967296]
    assert spec["containers"][0]["livenessProbe"]["httpGet"]["port"] == "http"
    assert spec["containers"][0]["readinessProbe"]["tcpSocket"]["port"] == 8080
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [1, 2, 42, 255]
    assert job["spec"]["activeDeadlineSeconds"] == 9000000000
    csr = pb.decode((DATA / "certificate-approve.pb").read_bytes())
    md = csr["metadata"]
    assert md["deletionTimestamp"] == "2030-12-31T23:59:59Z" and md["deletionGracePeriodSeconds"] == 0
    assert md["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:request": {}, "f:signerName": {}, "f:usages": {}}}
    assert csr["spec"]["extra"] == {"empty": [], "scopes": ["a", "b"]}


# ---------------------------------------------------------------------------
# Hand-made messages: semantics
# ---------------------------------------------------------------------------


def test_proto2_presence_and_omitempty() -> None:
    # core.v1.ServicePort: name(1,o) protocol(2,o) port(3, no omitempty) targetPort(4, IntOrString) nodePort(5,o)
    port = ld(1, "") + ld(2, "") + vi(3, 0) + vi(5, 0)
    svc_spec = ld(1, port) + ld(2, entry("app", ld(2, "x")))
    obj = pb.decode(envelope("v1", "Service", ld(2, svc_spec)))
    assert obj == {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"ports": [{"port": 0, "targetPort": 0}], "selector": {"app": "x"}},
        "status": {"loadBalancer": {}},
    }


def test_pointer_scalars_keep_zero() -> None:
    spec = vi(1, 0) + vi(7, 0)  # replicas (*int32) = 0, paused (bool, omitempty) = false
    obj = pb.decode(envelope("apps/v1", "Deployment", ld(2, spec)))
    assert obj["spec"]["replicas"] == 0
    assert "paused" not in obj["spec"]


def test_negative_and_large_integers() -> None:
    # PodSpec: activeDeadlineSeconds (5, *int64), priority (25, *int32), securityContext (14);
    # PodSecurityContext.supplementalGroups (4, []int64)
    psc = vi(4, 5) + ld(4, varint(1) + varint(2**40))  # unpacked and packed, mixed
    spec = vi(5, -7) + vi(25, -1) + ld(14, psc)
    obj = pb.decode(envelope("v1", "Pod", ld(2, spec)))
    assert obj["spec"]["activeDeadlineSeconds"] == -7
    assert obj["spec"]["priority"] == -1
    assert obj["spec"]["securityContext"]["supplementalGroups"] == [5, 1, 2**40]


def test_int32_truncation_like_go() -> None:
    # gogo decodes an int32 varint by truncation
    spec = vi(1, 2**32 + 3)
    assert pb.decode(envelope("apps/v1", "Deployment", ld(2, spec)))["spec"]["replicas"] == 3


def test_scalar_last_wins_and_messages_merge() -> None:
    meta1 = ld(1, "a") + ld(11, entry("x", ld(2, "1")))
    meta2 = ld(1, "b") + ld(11, entry("y", ld(2, "2")))
    obj = pb.decode(envelope("v1", "ConfigMap", ld(1, meta1) + ld(1, meta2)))
    assert obj["metadata"]["name"] == "b"
    assert obj["metadata"]["labels"] == {"x": "1", "y": "2"}


def test_maps_bytes_and_missing_entry_parts() -> None:
    data = ld(2, entry("k", ld(2, b"\x00\xff"))) + ld(2, entry("nov", None)) + ld(2, ld(2, b"v"))
    string_data = ld(4, entry("s", ld(2, "plain")))
    obj = pb.decode(envelope("v1", "Secret", data + string_data + ld(3, "Opaque")))
    assert obj["data"] == {"k": "AP8=", "nov": "", "": "dg=="}
    assert obj["stringData"] == {"s": "plain"}
    assert obj["type"] == "Opaque"


def test_map_of_quantities_and_wrappers() -> None:
    hard = ld(1, entry("cpu", ld(2, ld(1, "500m")))) + ld(1, entry("pods", None))
    obj = pb.decode(envelope("v1", "ResourceQuota", ld(2, hard)))
    assert obj["spec"]["hard"] == {"cpu": "500m", "pods": "0"}
    # authentication.v1.UserInfo.extra: map<string, ExtraValue{repeated string items = 1}>
    user = ld(1, "alice") + ld(4, entry("a", ld(2, ld(1, "x") + ld(1, "y")))) + ld(4, entry("b", ld(2, b""))) + ld(4, entry("c", None))
    spec = ld(1, "tok")
    status = vi(1, 1) + ld(2, user)
    obj = pb.decode(envelope("authentication.k8s.io/v1", "TokenReview", ld(2, spec) + ld(3, status)))
    assert obj["status"]["user"] == {"username": "alice", "extra": {"a": ["x", "y"], "b": [], "c": []}}
    assert obj["status"]["authenticated"] is True


def test_list_wrapper_field() -> None:
    # meta.v1.APIResource.verbs is a non-omitempty metav1.Verbs
    res_with = ld(1, "pods") + ld(4, ld(1, "get") + ld(1, "list"))
    res_empty = ld(1, "x") + ld(4, b"")
    res_nil = ld(1, "y")
    body = ld(1, "v1") + ld(2, res_with) + ld(2, res_empty) + ld(2, res_nil)
    obj = pb.decode(envelope("v1", "APIResourceList", body))
    verbs = [r["verbs"] for r in obj["resources"]]
    assert verbs == [["get", "list"], [], None]


def test_int_or_string_and_quantity() -> None:
    int_form = vi(1, 0) + vi(2, 8080)
    str_form = vi(1, 1) + ld(3, "http")
    port = vi(3, 80)
    spec = ld(1, port + ld(4, int_form)) + ld(1, port + ld(4, str_form))
    obj = pb.decode(envelope("v1", "Service", ld(2, spec)))
    assert [p["targetPort"] for p in obj["spec"]["ports"]] == [8080, "http"]
    with pytest.raises(pb.ProtobufError, match="IntOrString"):
        pb.decode(envelope("v1", "Service", ld(2, ld(1, ld(4, vi(1, 7))))))


def test_times_and_durations() -> None:
    t = 1704164645  # 2024-01-02T03:04:05Z
    meta = ld(1, "n") + ld(8, vi(1, t) + vi(2, 999)) + ld(9, vi(1, 0))
    obj = pb.decode(envelope("v1", "Namespace", ld(1, meta)))
    assert obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"  # nanos dropped
    assert obj["metadata"]["deletionTimestamp"] == "1970-01-01T00:00:00Z"
    # events.k8s.io/v1 Event: eventTime (2, MicroTime), series.lastObservedTime (MicroTime)
    ev = ld(2, vi(1, t) + vi(2, 123456789)) + ld(3, vi(1, 2) + ld(2, vi(1, t)))
    obj = pb.decode(envelope("events.k8s.io/v1", "Event", ev))
    assert obj["eventTime"] == "2024-01-02T03:04:05.123456Z"
    assert obj["series"] == {"count": 2, "lastObservedTime": "2024-01-02T03:04:05.000000Z"}
    assert pb.decode(envelope("events.k8s.io/v1", "Event", b""))["eventTime"] is None


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (1_000_000, "1ms"),
        (2_500_000_000, "2.5s"),
        (60_000_000_000, "1m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (90 * 60 * 10**9 + 1, "1h30m0.000000001s"),
        (-5 * 10**9, "-5s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert pb.go_duration(ns) == text


def test_duration_message() -> None:
    # metav1.Duration{duration = 1 (int64 ns)}; no kind in the covered groups uses it
    # today, so exercise the message decoder directly.
    assert "meta.v1.Duration" in schema.SPECIAL_MESSAGES
    assert pb._decode_message(vi(1, 90 * 10**9), "meta.v1.Duration", 0) == "1m30s"
    assert pb._decode_message(b"", "meta.v1.Duration", 0) == "0s"


def test_raw_extension_and_unknown_fields() -> None:
    # apps.v1.ControllerRevision: metadata(1), data(2, RawExtension), revision(3, int64)
    raw = ld(1, b'{"a": [1, 2]}')
    junk = vi(99, 5) + f64(98, 1.5) + f32(97, 7) + ld(96, b"zzz")
    obj = pb.decode(envelope("apps/v1", "ControllerRevision", ld(2, raw) + vi(3, 4) + junk))
    assert obj["data"] == {"a": [1, 2]} and obj["revision"] == 4
    assert pb.decode(envelope("apps/v1", "ControllerRevision", b""))["data"] is None
    with pytest.raises(pb.ProtobufError, match="JSON"):
        pb.decode(envelope("apps/v1", "ControllerRevision", ld(2, ld(1, b"\x00not json"))))


def test_inline_embedded_structs() -> None:
    # core.v1.Volume{name=1, VolumeSource(inline)=2{emptyDir=2{medium=1}}}
    vol = ld(1, "v") + ld(2, ld(2, ld(1, "Memory")))
    spec = ld(1, vol)
    obj = pb.decode(envelope("v1", "Pod", ld(2, spec)))
    assert obj["spec"]["volumes"] == [{"name": "v", "emptyDir": {"medium": "Memory"}}]


def test_any_version_option_kinds() -> None:
    body = envelope("v1", "DeleteOptions", vi(1, 0) + ld(4, "Background") + ld(5, "All"))
    assert pb.decode(body) == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Background",
        "dryRun": ["All"],
    }
    assert pb.supports("apps/v1", "DeleteOptions")
    assert pb.supports("policy/v1", "Eviction")


def test_supports() -> None:
    for api_version, kind in [
        ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"),
        ("v1", "ResourceQuota"), ("v1", "Pod"), ("apps/v1", "Deployment"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("scheduling.k8s.io/v1", "PriorityClass"), ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "Ingress"), ("authentication.k8s.io/v1", "TokenRequest"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"), ("v1", "Status"),
    ]:
        assert pb.supports(api_version, kind), (api_version, kind)
    assert not pb.supports("example.com/v1", "Widget")
    assert not pb.supports("apps/v1", "Pod")
    assert not pb.supports("", "DeleteOptions")


# ---------------------------------------------------------------------------
# Malformed bodies
# ---------------------------------------------------------------------------

GOOD = envelope("v1", "Namespace", ld(1, ld(1, "ns1")))


def test_good_body_decodes() -> None:
    assert pb.decode(GOOD) == {
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": "ns1", "creationTimestamp": None}, "spec": {}, "status": {},
    }


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "prefix"),
        (b"k8s", "prefix"),
        (b"{\"kind\": \"Namespace\"}", "prefix"),
        (b"k8s\x01" + GOOD[4:], "prefix"),
        (GOOD[:-1], "EOF"),  # raw length runs past the end
        (pb.MAGIC + b"\x0a", "EOF"),  # truncated varint (length of typeMeta)
        (pb.MAGIC + b"\x08\x80\x80", "EOF"),  # truncated varint value
        (pb.MAGIC + b"\x08" + b"\xff" * 10 + b"\x01", "overflow"),
        (pb.MAGIC + b"\x0f", "wire type"),  # wire type 7
        (pb.MAGIC + b"\x0b", "wire type"),  # start group
        (pb.MAGIC + b"\x00\x00", "field number"),
        (pb.MAGIC + b"\x09" + b"\x00" * 3, "EOF"),  # fixed64 cut short
        (pb.MAGIC + b"\x0d\x00", "EOF"),  # fixed32 cut short
        (envelope("example.com/v1", "Widget", b""), "no kind"),
        (envelope("v1", "", b""), "Kind"),
        (pb.MAGIC + ld(2, b""), "Kind"),
        (envelope("v1", "Namespace", b"", ld(3, "gzip")), "contentEncoding"),
        (envelope("v1", "Namespace", b"", ld(4, "application/json")), "contentType"),
        (envelope("v1", "Namespace", vi(1, 5)), "wireType"),  # metadata as a varint
        (envelope("v1", "Namespace", ld(1, vi(1, 5))), "wireType"),  # metadata.name as a varint
        (envelope("v1", "Namespace", ld(1, ld(11, b"\x0a\x05ab"))), "EOF"),  # bad map entry
        (pb.MAGIC + vi(1, 3), "wireType"),  # typeMeta as a varint
    ],
)
def test_malformed(body: bytes, match: str) -> None:
    with pytest.raises(pb.ProtobufError, match=match):
        pb.decode(body)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def test_every_truncation_of_a_real_body_fails_cleanly() -> None:
    body = (DATA / "deployment.pb").read_bytes()
    # Cutting between two fields of the envelope leaves a valid (smaller) message;
    # every other cut lands inside a field and must be rejected.
    boundaries: set[int] = set()
    pos = 4
    while pos < len(body):
        key, pos = _read_varint(body, pos)
        assert key & 7 == 2
        n, pos = _read_varint(body, pos)
        pos += n
        boundaries.add(pos)
    for n in range(len(body)):
        if n in boundaries:
            pb.decode(body[:n])
        else:
            with pytest.raises(pb.ProtobufError):
                pb.decode(body[:n])


def test_non_bytes_rejected() -> None:
    with pytest.raises(pb.ProtobufError):
        pb.decode("k8s\x00")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Table sanity
# ---------------------------------------------------------------------------

_TYPE = re.compile(r"^(\*|\[\]|map\[(\w+)\])?([\w.]+)$")
_SCALARS = {"string", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "bytes"}


def test_schema_is_consistent() -> None:
    known = set(schema.MESSAGES) | set(schema.LIST_WRAPPERS) | set(schema.SPECIAL_MESSAGES)
    for name, fields in schema.MESSAGES.items():
        seen = set()
        for num, (jname, typ, flags) in fields.items():
            assert isinstance(num, int) and num > 0
            m = _TYPE.match(typ)
            assert m, (name, typ)
            base = m.group(3)
            assert base in _SCALARS or base in known, (name, jname, typ)
            assert set(flags) <= {"o", "i"}
            if "i" in flags:
                assert jname == "" and base in schema.MESSAGES
            else:
                assert jname and jname not in seen, (name, jname)
                seen.add(jname)
    for target in list(schema.KINDS.values()) + list(schema.ANY_VERSION_KINDS.values()):
        assert target in schema.MESSAGES
    for item in schema.LIST_WRAPPERS.values():
        assert item in _SCALARS


# ---------------------------------------------------------------------------
# Live: the real kubectl against a throwaway server (skipped without kubectl)
# ---------------------------------------------------------------------------


def _kubectl(version: str) -> str | None:
    link = shutil.which("kubectl")
    if not link:
        return None
    path = Path(os.path.realpath(link)).parent / f"kubectl.{version}"
    return str(path) if path.exists() else None


class _Capture(BaseHTTPRequestHandler):
    bodies: list[tuple[str, str, str, bytes]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ctype = self.headers.get("Content-Type", "")
        type(self).bodies.append((self.path, ctype, self.headers.get("Accept", ""), body))
        try:
            obj = pb.decode(body) if ctype == pb.CONTENT_TYPE else json.loads(body)
        except pb.ProtobufError as e:
            self._json(400, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "BadRequest",
                             "message": str(e), "code": 400})
            return
        self._json(201, obj)  # answer JSON although protobuf was preferred


@pytest.mark.parametrize("version", ["1.32", "1.33"])
def test_live_kubectl_create(version: str, tmp_path: Path) -> None:
    kubectl = _kubectl(version)
    if kubectl is None:
        pytest.skip(f"kubectl.{version} not installed")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    _Capture.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = [kubectl, "--server", f"http://127.0.0.1:{server.server_port}", "--cache-dir", str(tmp_path), "-n", "default"]
        env = dict(os.environ, HOME=str(tmp_path))
        for args in (
            ["create", "deployment", "web", "--image=nginx", "--replicas=0", "--port=80"],
            ["create", "secret", "generic", "s", "--from-literal=k=v", "--from-literal=e="],
            ["create", "service", "nodeport", "np", "--tcp=80:8080"],
        ):
            run = subprocess.run(base + args, capture_output=True, text=True, env=env, timeout=60)
            assert run.returncode == 0, run.stderr  # kubectl accepted the JSON answer
            path, ctype, accept, body = _Capture.bodies[-1]
            assert ctype == pb.CONTENT_TYPE
            assert accept == "application/vnd.kubernetes.protobuf,application/json"
            dry = subprocess.run(base + args + ["--dry-run=client", "-o", "json"], capture_output=True, text=True,
                                 env=env, timeout=60)
            assert dry.returncode == 0, dry.stderr
            assert pb.decode(body) == json.loads(dry.stdout)
    finally:
        server.shutdown()
        server.server_close()
