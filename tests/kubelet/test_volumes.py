"""The volume manager on real files: AtomicWriter projections and their updates,
emptyDir (tmpfs for medium Memory, as root), hostPath type checks, PVC -> PV,
container mounts with subPath, teardown, and the kubelet's hosts/resolv.conf."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8py.kubelet.runtime.interface import Mount
from k8py.kubelet.volumes import AtomicWriter, FileProjection, VolumeError, VolumeManager
from k8py.kubelet.volumes import podfiles
from k8py.kubelet.volumes.manager import mountpoints

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs mounts need root")


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Objects:
    """The kubelet's getter over a dict that tests change."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], dict] = {}

    def put(self, kind: str, ns: str, name: str, obj: dict) -> None:
        self.items[(kind, ns, name)] = obj

    async def get(self, kind: str, ns: str, name: str) -> dict | None:
        return self.items.get((kind, ns, name))


@pytest.fixture
def tmp() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="k8py-vol-"))
    yield d
    left = [m for m in mountpoints() if m.startswith(str(d) + "/")]
    for m in sorted(left, key=len, reverse=True):
        os.system(f"umount '{m}'")
    shutil.rmtree(d)
    assert left == [], "mounts left behind"


@pytest.fixture
def vm(tmp: Path) -> VolumeManager:
    return VolumeManager(str(tmp / "pods"), node_allocatable={"cpu": "4", "memory": "8Gi"})


def make_pod(volumes: list[dict], containers: list[dict] | None = None, **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-" + secrets.token_hex(4),
                         "labels": {"app": "web"}, "annotations": {"a": "1"}},
            "spec": {"volumes": volumes, "containers": containers or [{"name": "c"}], **spec}}


def mount(vm: VolumeManager, pod: dict, objs: Objects) -> dict[str, str]:
    return asyncio.run(vm.mount_pod(pod, objs.get, pod_ip="10.88.0.9", host_ip="10.0.0.1", node_name="n"))


def mode_of(p: str | Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


# -- AtomicWriter ---------------------------------------------------------------

def test_atomic_writer_layout_update_and_idempotence(tmp: Path) -> None:
    target = tmp / "vol"
    w = AtomicWriter(str(target))
    assert w.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o400)}) is True
    data = os.readlink(target / "..data")
    assert re.fullmatch(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+", data)   # ..YYYY_MM_DD_HH_MM_SS.<n>
    assert os.readlink(target / "a") == "..data/a" and os.readlink(target / "dir") == "..data/dir"
    assert (target / "dir" / "b").read_bytes() == b"2" and mode_of(target / "dir" / "b") == 0o400

    assert w.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o400)}) is False
    assert os.readlink(target / "..data") == data                     # nothing swapped

    assert w.write({"a": FileProjection(b"changed")}) is True
    assert (target / "a").read_bytes() == b"changed"
    assert not os.path.lexists(target / "dir")                         # gone with its key
    assert not (target / data).exists()                                # the old version removed
    assert set(os.listdir(target)) == {"..data", os.readlink(target / "..data"), "a"}


def test_atomic_writer_rejects_bad_paths(tmp: Path) -> None:
    w = AtomicWriter(str(tmp / "vol"))
    for bad, msg in [("/abs", "must be relative path"), ("a/../b", "must not contain '..'"),
                     ("..x", "must not start with '..'"), ("", "must not be empty")]:
        with pytest.raises(ValueError, match=msg):
            w.write({bad: FileProjection(b"x")})


def test_atomic_swap_never_shows_a_partial_payload(tmp: Path) -> None:
    """A reader through the user-visible links sees a whole old or whole new payload, always."""
    target = tmp / "vol"
    w = AtomicWriter(str(target))
    w.write({"x": FileProjection(b"0"), "y": FileProjection(b"0")})
    seen: list[tuple[bytes, bytes]] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                # read both through one resolution of ..data, as a program reading a dir would
                base = os.path.realpath(target / "..data")
                seen.append((Path(base, "x").read_bytes(), Path(base, "y").read_bytes()))
                Path(target / "x").read_bytes()             # and the plain link never dangles
            except FileNotFoundError:
                # the version just resolved was retired between realpath and read: retry
                continue
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, 150):
            w.write({"x": FileProjection(str(i).encode()), "y": FileProjection(str(i).encode())})
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert seen and all(a == b for a, b in seen)
    assert (target / "x").read_bytes() == b"149"


# -- configMap / secret / downwardAPI / projected ------------------------------------

def test_configmap_volume_items_modes_and_update(vm: VolumeManager) -> None:
    objs = Objects()
    objs.put("configmaps", "ns", "cfg", {"data": {"game.properties": "lives=3\n", "ui": "dark"},
                                         "binaryData": {"logo.bin": b64(b"\x00\xff")}})
    pod = make_pod([
        {"name": "all", "configMap": {"name": "cfg", "defaultMode": 0o600}},
        {"name": "some", "configMap": {"name": "cfg", "items": [
            {"key": "ui", "path": "conf/ui.txt", "mode": 0o444},
            {"key": "absent", "path": "x"}], "optional": True}},
    ])
    paths = mount(vm, pod, objs)
    uid = pod["metadata"]["uid"]
    assert paths["all"] == f"{vm.root}/{uid}/volumes/kubernetes.io~configmap/all"
    all_ = Path(paths["all"])
    assert mode_of(all_) == 0o777
    assert sorted(p.name for p in all_.iterdir() if not p.name.startswith("..")) == \
        ["game.properties", "logo.bin", "ui"]
    assert (all_ / "game.properties").read_text() == "lives=3\n"
    assert (all_ / "logo.bin").read_bytes() == b"\x00\xff"
    assert os.readlink(all_ / "ui") == "..data/ui" and mode_of(all_ / "ui") == 0o600
    some = Path(paths["some"])
    assert (some / "conf" / "ui.txt").read_text() == "dark" and mode_of(some / "conf" / "ui.txt") == 0o444
    assert not (some / "x").exists()                                   # optional: missing key skipped

    # an unchanged ConfigMap swaps nothing; a changed one reaches the same paths
    before = os.readlink(all_ / "..data")
    assert asyncio.run(vm.update_pod(pod, objs.get)) == []
    assert os.readlink(all_ / "..data") == before
    objs.put("configmaps", "ns", "cfg", {"data": {"game.properties": "lives=5\n", "ui": "light"}})
    assert asyncio.run(vm.update_pod(pod, objs.get)) == ["all", "some"]
    assert (all_ / "game.properties").read_text() == "lives=5\n"
    assert (some / "conf" / "ui.txt").read_text() == "light"
    assert not os.path.lexists(all_ / "logo.bin")
    # mount_pod again (the next sync) is a no-op
    assert mount(vm, pod, objs) == paths
    asyncio.run(vm.unmount_pod(uid))
    assert not os.path.exists(f"{vm.root}/{uid}")


def test_missing_sources_and_keys(vm: VolumeManager) -> None:
    objs = Objects()
    objs.put("configmaps", "ns", "cfg", {"data": {"k": "v"}})
    objs.put("secrets", "ns", "sec", {"data": {"k": b64("v")}})
    cases = [
        ({"configMap": {"name": "nope"}}, 'MountVolume.SetUp failed for volume "v" : configmap "nope" not found'),
        ({"secret": {"secretName": "nope"}}, 'MountVolume.SetUp failed for volume "v" : secret "nope" not found'),
        ({"configMap": {"name": "cfg", "items": [{"key": "zz", "path": "p"}]}},
         'MountVolume.SetUp failed for volume "v" : configmap references non-existent config key: zz'),
        ({"secret": {"secretName": "sec", "items": [{"key": "zz", "path": "p"}]}},
         'MountVolume.SetUp failed for volume "v" : references non-existent secret key: zz'),
        ({"projected": {"sources": [{"configMap": {"name": "nope"}}]}},
         'MountVolume.SetUp failed for volume "v" : configmap "nope" not found'),
        ({"nfs": {"server": "x", "path": "/"}}, 'MountVolume.SetUp failed for volume "v" : no volume plugin'),
        ({"emptyDir": {"medium": "HugePages"}}, "does not support emptyDir medium HugePages"),
    ]
    for source, message in cases:
        pod = make_pod([{"name": "v", **source}])
        with pytest.raises(VolumeError) as err:
            mount(vm, pod, objs)
        assert err.value.reason == "FailedMount" and message in err.value.message, err.value.message
        asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
    # optional and missing: an empty volume; it fills when the ConfigMap appears
    pod = make_pod([{"name": "v", "configMap": {"name": "later", "optional": True}}])
    path = Path(mount(vm, pod, objs)["v"])
    assert [p for p in os.listdir(path) if not p.startswith("..")] == []
    objs.put("configmaps", "ns", "later", {"data": {"now": "here"}})
    assert asyncio.run(vm.update_pod(pod, objs.get)) == ["v"]
    assert (path / "now").read_text() == "here"
    # deleted again while the pod runs: update reports it, the content stays
    objs.items.pop(("configmaps", "ns", "cfg"))
    pod2 = make_pod([{"name": "v", "configMap": {"name": "later"}}])
    mount(vm, pod2, objs)
    objs.items.pop(("configmaps", "ns", "later"))
    with pytest.raises(VolumeError, match='configmap "later" not found'):
        asyncio.run(vm.update_pod(pod2, objs.get))
    assert (Path(vm.volume_dir(pod2["metadata"]["uid"], "kubernetes.io~configmap", "v")) / "now").read_text() == "here"
    for p in (pod, pod2):
        asyncio.run(vm.unmount_pod(p["metadata"]["uid"]))


@ROOT_ONLY
def test_secret_volume_in_tmpfs_decoded(vm: VolumeManager) -> None:
    objs = Objects()
    objs.put("secrets", "ns", "sec", {"data": {"password": b64("hunter2"), "raw": b64(b"\x01\x02")}})
    pod = make_pod([{"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}}])
    path = mount(vm, pod, objs)["s"]
    assert path.endswith("/volumes/kubernetes.io~secret/s")
    assert path in mountpoints()                                       # never on disk
    assert Path(path, "password").read_text() == "hunter2" and mode_of(Path(path, "password")) == 0o400
    assert Path(path, "raw").read_bytes() == b"\x01\x02"
    objs.put("secrets", "ns", "sec", {"data": {"password": b64("changed")}})
    assert asyncio.run(vm.update_pod(pod, objs.get)) == ["s"]
    assert Path(path, "password").read_text() == "changed"
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
    assert path not in mountpoints() and not os.path.exists(path)


def test_downward_api_and_projected(tmp: Path) -> None:
    vm = VolumeManager(str(tmp / "pods"), node_allocatable={"cpu": "4", "memory": "8Gi"},
                       memory_backed_secrets=False)
    objs = Objects()
    objs.put("configmaps", "ns", "cfg", {"data": {"a": "A"}})
    objs.put("secrets", "ns", "sec", {"data": {"b": b64("B")}})
    items = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}, "mode": 0o400},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                             "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
    ]
    pod = make_pod([
        {"name": "dw", "downwardAPI": {"items": items}},
        {"name": "pj", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "cfg"}},
            {"secret": {"name": "sec", "items": [{"key": "b", "path": "sub/b"}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        ]}},
    ], containers=[{"name": "c", "resources": {"limits": {"memory": "256Mi"}}}])
    paths = mount(vm, pod, objs)
    dw = Path(paths["dw"])
    assert paths["dw"].endswith("/kubernetes.io~downward-api/dw")
    assert (dw / "labels").read_text() == 'app="web"' and (dw / "name").read_text() == "p"
    assert (dw / "app").read_text() == "web" and mode_of(dw / "app") == 0o400
    assert (dw / "mem").read_text() == "256" and (dw / "cpu").read_text() == "4000"   # node allocatable
    pj = Path(paths["pj"])
    assert paths["pj"].endswith("/kubernetes.io~projected/pj")
    assert (pj / "a").read_text() == "A" and (pj / "sub" / "b").read_text() == "B"
    assert (pj / "ns").read_text() == "ns" and mode_of(pj / "a") == 0o440
    assert not os.path.lexists(pj / "token")                            # TODO: no TokenRequest API yet
    # a label change reaches the downward API volume
    pod["metadata"]["labels"]["app"] = "api"
    assert asyncio.run(vm.update_pod(pod, objs.get)) == ["dw"]
    assert (dw / "app").read_text() == "api"
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))


# -- emptyDir -------------------------------------------------------------------------

def test_empty_dir_on_disk(vm: VolumeManager) -> None:
    pod = make_pod([{"name": "scratch", "emptyDir": {}}])
    path = mount(vm, pod, Objects())["scratch"]
    assert path.endswith("/volumes/kubernetes.io~empty-dir/scratch") and mode_of(path) == 0o777
    Path(path, "f").write_text("kept across syncs")
    mount(vm, pod, Objects())
    assert Path(path, "f").read_text() == "kept across syncs"
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
    assert not os.path.exists(path)


@ROOT_ONLY
def test_empty_dir_memory_is_tmpfs_with_size(vm: VolumeManager) -> None:
    pod = make_pod([{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    {"name": "mem2", "emptyDir": {"medium": "Memory"}}],
                   containers=[{"name": "c", "resources": {"limits": {"memory": "32Mi"}}}])
    paths = mount(vm, pod, Objects())
    for name, size in (("mem", 16 * 2**20), ("mem2", 32 * 2**20)):   # sizeLimit; else the pod's limit
        assert paths[name] in mountpoints()
        st = os.statvfs(paths[name])
        assert st.f_blocks * st.f_frsize == size
        assert mode_of(paths[name]) == 0o777
    mount(vm, pod, Objects())                                           # not mounted twice
    assert sum(1 for m in mountpoints() if m == paths["mem"]) == 1
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
    assert not any(m.startswith(vm.root) for m in mountpoints())
    assert not os.path.exists(vm.pod_dir(pod["metadata"]["uid"]))


def test_without_tmpfs_memory_volumes_are_plain_dirs(tmp: Path) -> None:
    vm = VolumeManager(str(tmp / "pods"), tmpfs=False)
    assert vm.memory_backed_secrets is False
    objs = Objects()
    objs.put("secrets", "ns", "sec", {"data": {"k": b64("v")}})
    pod = make_pod([{"name": "m", "emptyDir": {"medium": "Memory"}}, {"name": "s", "secret": {"secretName": "sec"}}])
    paths = mount(vm, pod, objs)
    assert os.path.isdir(paths["m"]) and Path(paths["s"], "k").read_text() == "v"
    assert not any(m.startswith(vm.root) for m in mountpoints())
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))


@ROOT_ONLY
def test_fs_group_ownership(vm: VolumeManager) -> None:
    objs = Objects()
    objs.put("configmaps", "ns", "cfg", {"data": {"k": "v"}})
    pod = make_pod([{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg", "defaultMode": 0o400}}],
                   securityContext={"fsGroup": 2345})
    paths = mount(vm, pod, objs)
    st = os.stat(paths["e"])
    assert st.st_gid == 2345 and st.st_mode & stat.S_ISGID
    f = Path(paths["c"], "k")
    assert os.stat(f).st_gid == 2345 and mode_of(f) == 0o440            # group may read it
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))


# -- hostPath and PVCs ------------------------------------------------------------------

def test_host_path_types(vm: VolumeManager, tmp: Path) -> None:
    host = tmp / "host"
    host.mkdir()
    (host / "file").write_text("precious")
    sock_path = str(host / "sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(sock_path)
    try:
        ok = [
            ("DirectoryOrCreate", host / "new" / "deep"),
            ("Directory", host),
            ("FileOrCreate", host / "created"),
            ("File", host / "file"),
            ("Socket", Path(sock_path)),
            ("CharDevice", Path("/dev/null")),
            ("", host / "anything"),
        ]
        for t, p in ok:
            pod = make_pod([{"name": "h", "hostPath": {"path": str(p), "type": t}}])
            assert mount(vm, pod, Objects()) == {"h": str(p)}
            asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
        assert (host / "new" / "deep").is_dir() and mode_of(host / "new" / "deep") == 0o755
        assert (host / "created").is_file() and (host / "created").read_text() == ""
        bad = [
            ("Directory", host / "file", "is not a directory"),
            ("Directory", host / "missing", "is not a directory"),
            ("File", host, "is not a file"),
            ("File", host / "missing", "is not a file"),
            ("Socket", host / "file", "is not a socket file"),
            ("CharDevice", host / "file", "is not a character device"),
            ("BlockDevice", Path("/dev/null"), "is not a block device"),
            ("FileOrCreate", host / "no" / "parent", "No such file"),
            ("Bogus", host, "Bogus is an invalid volume type"),
        ]
        for t, p, msg in bad:
            pod = make_pod([{"name": "h", "hostPath": {"path": str(p), "type": t}}])
            with pytest.raises(VolumeError) as err:
                mount(vm, pod, Objects())
            assert err.value.reason == "FailedMount" and msg in err.value.message, err.value.message
            assert err.value.message.startswith('MountVolume.SetUp failed for volume "h" : ')
            asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
        assert (host / "file").read_text() == "precious"                # hostPath never removed
    finally:
        sock.close()


def test_pvc_bound_to_host_path_and_local_pv(vm: VolumeManager, tmp: Path) -> None:
    data = tmp / "pv-data"
    data.mkdir()
    (data / "db").write_text("rows")
    objs = Objects()
    objs.put("persistentvolumeclaims", "ns", "claim", {
        "metadata": {"name": "claim", "uid": "pvc-uid"}, "spec": {"volumeName": "pv1"},
        "status": {"phase": "Bound"}})
    objs.put("persistentvolumes", "", "pv1", {"metadata": {"name": "pv1"}, "spec": {
        "hostPath": {"path": str(data), "type": "Directory"}, "claimRef": {"uid": "pvc-uid", "name": "claim"}}})
    pod = make_pod([{"name": "d", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}}],
                   containers=[{"name": "c", "volumeMounts": [{"name": "d", "mountPath": "/data"}]}])
    paths = mount(vm, pod, objs)
    assert paths == {"d": str(data)}
    assert vm.mounts_for(pod, pod["spec"]["containers"][0], paths) == [Mount("/data", str(data), True)]
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))
    assert (data / "db").read_text() == "rows"                          # the PV's content stays

    objs.put("persistentvolumes", "", "pv1", {"metadata": {"name": "pv1"}, "spec": {
        "local": {"path": str(data)}, "claimRef": {"uid": "pvc-uid"}}})
    assert mount(vm, pod, objs) == {"d": str(data)}
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))

    cases = [
        ({"status": {"phase": "Pending"}, "spec": {}}, "error processing PVC ns/claim: PVC is not bound"),
        (None, 'error processing PVC ns/claim: failed to fetch PVC from API server: '
               'persistentvolumeclaims "claim" not found'),
        ({"metadata": {"uid": "pvc-uid"}, "status": {"phase": "Bound"}, "spec": {"volumeName": "pv2"}},
         'failed to fetch PV pv2 from API server: persistentvolumes "pv2" not found'),
        ({"metadata": {"uid": "other"}, "status": {"phase": "Bound"}, "spec": {"volumeName": "pv1"}},
         "its pv.Spec.ClaimRef.UID pvc-uid does not point to claim.UID other"),
    ]
    for pvc, message in cases:
        if pvc is None:
            objs.items.pop(("persistentvolumeclaims", "ns", "claim"), None)
        else:
            objs.put("persistentvolumeclaims", "ns", "claim", pvc)
        with pytest.raises(VolumeError) as err:
            mount(vm, pod, objs)
        assert err.value.reason == "FailedMount" and message in err.value.message, err.value.message
        asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))


# -- container mounts -------------------------------------------------------------------

def test_mounts_for_read_only_and_sub_paths(vm: VolumeManager, tmp: Path) -> None:
    objs = Objects()
    objs.put("configmaps", "ns", "cfg", {"data": {"nginx.conf": "v1"}})
    outside = tmp / "outside"
    outside.mkdir()
    c = {"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "scratch", "mountPath": "/ro", "readOnly": True},
        {"name": "scratch", "mountPath": "/logs", "subPath": "logs/app"},
        {"name": "scratch", "mountPath": "/per-pod", "subPathExpr": "$(POD_NAME)/x"},
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "cfg", "mountPath": "/etc/nginx.conf", "subPath": "nginx.conf"},
    ]}
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
                   containers=[c])
    paths = mount(vm, pod, objs)
    mounts = vm.mounts_for(pod, c, paths, env=[("POD_NAME", "p")])
    scratch, cfg = paths["scratch"], paths["cfg"]
    conf = os.path.realpath(os.path.join(cfg, "nginx.conf"))
    assert mounts == [
        Mount("/scratch", scratch, False),
        Mount("/ro", scratch, True),
        Mount("/logs", f"{scratch}/logs/app", False),
        Mount("/per-pod", f"{scratch}/p/x", False),
        Mount("/etc/cfg", cfg, True),                                   # API data: always read-only
        Mount("/etc/nginx.conf", conf, True),
    ]
    assert os.path.isdir(f"{scratch}/logs/app") and mode_of(f"{scratch}/logs/app") == 0o777
    assert "/..20" in conf and Path(conf).read_text() == "v1"           # bound through ..data, resolved
    # a subPath mount keeps its file across an update, as in kube; the directory mount follows
    objs.put("configmaps", "ns", "cfg", {"data": {"nginx.conf": "v2"}})
    asyncio.run(vm.update_pod(pod, objs.get))
    assert Path(cfg, "nginx.conf").read_text() == "v2"

    os.symlink(str(outside), f"{scratch}/escape")
    bad = [
        ({"name": "nope", "mountPath": "/x"}, 'cannot find volume "nope" to mount into container "c"'),
        ({"name": "scratch", "mountPath": "/x", "subPath": "/abs"}, "must not be an absolute path"),
        ({"name": "scratch", "mountPath": "/x", "subPath": "a/../../b"}, "must not contain '..'"),
        ({"name": "scratch", "mountPath": "/x", "subPathExpr": "$(MISSING)/$(EMPTY)"},
         "missing value for EMPTY, MISSING"),
        ({"name": "scratch", "mountPath": "/x", "subPath": "escape"}, "not within volume path"),
        ({"name": "scratch", "mountPath": "/x", "subPath": "escape/new"}, "not within volume path"),
    ]
    for vmnt, message in bad:
        with pytest.raises(VolumeError) as err:
            vm.mounts_for(pod, {"name": "c", "volumeMounts": [vmnt]}, paths, env=[("EMPTY", "")])
        assert err.value.reason == "CreateContainerConfigError" and message in err.value.message
    assert os.listdir(outside) == []                                    # nothing made outside
    asyncio.run(vm.unmount_pod(pod["metadata"]["uid"]))


def test_orphaned_and_unmount_keep_host_paths(vm: VolumeManager, tmp: Path) -> None:
    host = tmp / "host"
    host.mkdir()
    (host / "keep").write_text("x")
    pods = [make_pod([{"name": "h", "hostPath": {"path": str(host)}}, {"name": "e", "emptyDir": {}}])
            for _ in range(3)]
    for p in pods:
        mount(vm, p, Objects())
    uids = [p["metadata"]["uid"] for p in pods]
    assert vm.orphaned([uids[0]]) == sorted(uids[1:])
    for uid in vm.orphaned([uids[0]]):
        asyncio.run(vm.unmount_pod(uid))
    assert vm.orphaned([uids[0]]) == [] and os.listdir(vm.root) == [uids[0]]
    asyncio.run(vm.unmount_pod(uids[0]))
    asyncio.run(vm.unmount_pod(uids[0]))                                # idempotent
    assert (host / "keep").read_text() == "x"
    assert VolumeManager(str(tmp / "nowhere")).orphaned([]) == []


# -- /etc/hosts and resolv.conf ------------------------------------------------------

def test_etc_hosts(vm: VolumeManager, tmp: Path) -> None:
    pod = make_pod([], hostname="web", subdomain="svc1",
                   hostAliases=[{"ip": "10.1.1.1", "hostnames": ["foo.local", "bar.local"]}])
    path = vm.write_etc_hosts(pod, ["10.88.0.9", "fd00::9"], "cluster.local")
    assert path == f'{vm.root}/{pod["metadata"]["uid"]}/etc-hosts'
    assert Path(path).read_text() == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        "10.88.0.9\tweb.svc1.ns.svc.cluster.local\tweb\n"
        "fd00::9\tweb.svc1.ns.svc.cluster.local\tweb\n"
        "\n# Entries added by HostAliases.\n"
        "10.1.1.1\tfoo.local\tbar.local\n")
    plain = make_pod([])
    assert Path(vm.write_etc_hosts(plain, ["10.88.0.3"], "cluster.local")).read_text().endswith("10.88.0.3\tp\n")
    node_hosts = tmp / "hosts"
    node_hosts.write_text("127.0.0.1 localhost\n10.0.0.1 node-a\n")
    hn = make_pod([], hostNetwork=True)
    assert Path(vm.write_etc_hosts(hn, [], "cluster.local", host_hosts=str(node_hosts))).read_text() == \
        "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 node-a\n"
    assert mode_of(path) == 0o644


def test_resolv_conf_policies(vm: VolumeManager, tmp: Path) -> None:
    host = tmp / "resolv.conf"
    host.write_text("# host\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch corp.example. .\n"
                    "options edns0 timeout:2\n")

    def conf(**spec) -> str:
        pod = make_pod([], **spec)
        return Path(vm.write_resolv_conf(pod, ["10.96.0.10"], "cluster.local", str(host))).read_text()

    assert conf() == ("search ns.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                      "nameserver 10.96.0.10\noptions ndots:5\n")
    assert conf(dnsPolicy="Default") == \
        "search corp.example\nnameserver 192.168.1.1\nnameserver 192.168.1.2\noptions edns0 timeout:2\n"
    assert conf(hostNetwork=True) == conf(dnsPolicy="Default")          # ClusterFirst on the host network
    assert conf(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet") == conf()
    assert conf(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"], "searches": ["a.b"],
                                             "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}) == \
        "search a.b\nnameserver 1.1.1.1\noptions ndots:2 rotate\n"
    merged = conf(dnsConfig={"nameservers": ["10.96.0.10", "1.1.1.1", "8.8.8.8", "9.9.9.9"],
                             "searches": ["cluster.local", "x.y"],
                             "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]})
    assert merged == ("search ns.svc.cluster.local svc.cluster.local cluster.local corp.example x.y\n"
                      "nameserver 10.96.0.10\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n"   # 3 at most
                      "options ndots:1 edns0\n")
    # no cluster DNS configured: ClusterFirst falls back to the host's
    pod = make_pod([])
    assert podfiles.pod_dns_config(pod, [], "cluster.local", str(host)).servers == ["192.168.1.1", "192.168.1.2"]
    assert podfiles.pod_hostname_and_domain(make_pod([], subdomain="s"), "c.l") == ("p", "s.ns.svc.c.l")
    long_name = make_pod([])
    long_name["metadata"]["name"] = "a" * 62 + "-b"
    assert podfiles.pod_hostname_and_domain(long_name, "c.l")[0] == "a" * 62


# -- with real runc: a running container sees a ConfigMap update -------------------------

def test_configmap_update_reaches_running_container(tmp: Path) -> None:
    from tests.kubelet import test_runc as tr
    if os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists(tr.BUSYBOX):
        pytest.skip("needs root, runc and busybox-static")
    from k8py.kubelet.runtime.runc import RuncRuntime
    tr.make_busybox_layer(tmp / "layer")
    rt = RuncRuntime(root=str(tmp / "runc"), cgroup_root=f"k8py-test-{secrets.token_hex(4)}")
    vm = VolumeManager(str(tmp / "pods"))
    objs = Objects()
    objs.put("configmaps", "ns", "cfg", {"data": {"greeting": "hello"}})
    c = {"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                                       {"name": "cfg", "mountPath": "/greeting", "subPath": "greeting"}]}
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}], containers=[c])

    async def main() -> None:
        paths = await vm.mount_pod(pod, objs.get, pod_ip="", host_ip="", node_name="n")
        mounts = tuple(vm.mounts_for(pod, c, paths))
        sid = await rt.run_pod_sandbox(tr.sandbox())
        try:
            cid = await rt.create_container(sid, tr.container(str(tmp / "layer"), "sleep", "100", mounts=mounts))
            await rt.start_container(cid)
            read = ["sh", "-c", "cat /etc/cfg/greeting; echo; cat /greeting; echo; touch /etc/cfg/x 2>&1 || true"]
            r = await rt.exec_sync(cid, read)
            lines = r.stdout.decode().splitlines()
            assert lines[:2] == ["hello", "hello"] and "Read-only file system" in lines[2]
            objs.put("configmaps", "ns", "cfg", {"data": {"greeting": "bonjour"}})
            assert await vm.update_pod(pod, objs.get) == ["cfg"]
            r = await rt.exec_sync(cid, read)
            assert r.stdout.decode().splitlines()[:2] == ["bonjour", "hello"]   # subPath keeps its file
            await rt.stop_container(cid, 0)
        finally:
            await rt.remove_pod_sandbox(sid)
            await vm.unmount_pod(pod["metadata"]["uid"])

    try:
        asyncio.run(main())
    finally:
        rt.remove_cgroup_root()
