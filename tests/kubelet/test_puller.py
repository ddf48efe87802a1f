"""ImageManager against a real docker-registry on loopback: policies, pull secrets, back-off, mirrors, GC."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

import pytest

from k8py.kubelet.images import ImageStore, import_archive
from k8py.kubelet.images.puller import (
    Backoff, ImageManager, ImagePullError, Keyring, default_pull_policy, urls_match,
)
from k8py.kubelet.images.reference import parse_reference
from k8py.kubelet.images.registry import RegistryClient, parse_registry_mirrors
from tests.support.images import BusyboxArchive, busybox_archive  # noqa: F401 (fixture)
from tests.support.registry import Registry, busybox_registry  # noqa: F401 (fixture)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (layers keep their owners)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[ImageStore]:
    d = tempfile.mkdtemp(prefix="k8py-puller-")
    try:
        yield ImageStore(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def dockerconfigjson(auths: dict[str, dict[str, str]]) -> dict[str, Any]:
    raw = json.dumps({"auths": auths}).encode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "regcred", "namespace": "default"},
            "data": {".dockerconfigjson": base64.b64encode(raw).decode()}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- pure logic ------------------------------------------------------------------------------------

def test_default_pull_policy() -> None:
    assert default_pull_policy("busybox") == "Always"
    assert default_pull_policy("busybox:latest") == "Always"
    assert default_pull_policy("busybox:1.36") == "IfNotPresent"
    assert default_pull_policy("busybox@sha256:" + "a" * 64) == "IfNotPresent"
    assert default_pull_policy("localhost:5000/app") == "Always"


def test_keyring_matches_as_kube() -> None:
    ring = Keyring([
        dockerconfigjson({
            "https://index.docker.io/v1/": {"auth": b64("hub:hubpw")},
            "quay.io": {"username": "q", "password": "qpw"},
            "quay.io/coreos": {"username": "coreos", "password": "cpw", "auth": b64("coreos2:cpw2")},
            "*.example.com": {"username": "glob", "password": "gpw"},
            "127.0.0.1:5000": {"username": "local", "password": "lpw"},
        }),
        {"type": "kubernetes.io/dockercfg",
         "data": {".dockercfg": b64(json.dumps({"http://old.registry.io": {"auth": b64("old:opw")}}))}},
        {"type": "Opaque", "data": {"x": b64("y")}},
    ])
    assert ring.lookup("docker.io/library/busybox") == [("hub", "hubpw")]
    assert ring.lookup("quay.io/coreos/etcd") == [("coreos2", "cpw2"), ("q", "qpw")]  # the auth field wins
    assert ring.lookup("quay.io/other/app") == [("q", "qpw")]
    assert ring.lookup("reg.example.com/team/app") == [("glob", "gpw")]
    assert ring.lookup("a.b.example.com/app") == []  # one label per *
    assert ring.lookup("127.0.0.1:5000/app") == [("local", "lpw")]
    assert ring.lookup("127.0.0.1:5001/app") == []  # ports must match
    assert ring.lookup("old.registry.io/x") == [("old", "opw")]
    assert urls_match("registry.io/team", "registry.io/team/app") and not urls_match("registry.io/team", "registry.io/x")


def test_backoff_doubles_to_the_maximum_and_expires() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock)
    assert not b.in_backoff("k")
    delays = [b.next("k") for _ in range(7)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert b.in_backoff("k")
    clock.now += 299
    assert b.in_backoff("k")
    clock.now += 2
    assert not b.in_backoff("k")
    clock.now += 600  # idle for twice the maximum: forgotten, the next failure starts over
    assert b.next("k") == 10


def test_registry_mirror_flags() -> None:
    m = parse_registry_mirrors(["docker.io=http://127.0.0.1:5000", "docker.io=mirror.lan:5000/", "quay.io=https://q.lan"])
    assert m == {"docker.io": ["http://127.0.0.1:5000", "mirror.lan:5000"], "quay.io": ["https://q.lan"]}
    with pytest.raises(ValueError):
        parse_registry_mirrors(["docker.io"])
    client = RegistryClient(ImageStore.__new__(ImageStore), mirrors=m, insecure=["mirror.lan:5000"])
    assert client.endpoints(parse_reference("busybox")) == [
        "http://127.0.0.1:5000", "http://mirror.lan:5000", "https://registry-1.docker.io"]
    assert client.endpoints(parse_reference("quay.io/a/b")) == ["https://q.lan", "https://quay.io"]


# -- against a real registry -----------------------------------------------------------------------

@root_only
def test_policies_and_coalesced_pulls(busybox_registry: Registry, busybox_archive: BusyboxArchive,
                                      store: ImageStore) -> None:
    image = f"{busybox_registry.host}/library/busybox:latest"
    events: list[tuple[str, str, str]] = []

    async def main() -> None:
        mgr = ImageManager(store)
        try:
            with pytest.raises(ImagePullError) as e:
                await mgr.ensure_image(image, "Never")
            assert e.value.reason == "ErrImageNeverPull"
            assert e.value.message == f'Container image "{image}" is not present with pull policy of Never'
            with pytest.raises(ImagePullError) as e:
                await mgr.ensure_image("Not/A Valid:image", "IfNotPresent")
            assert e.value.reason == "InvalidImageName"
            assert e.value.message == ('Failed to apply default image tag "Not/A Valid:image": couldn\'t parse image '
                                       'name "Not/A Valid:image": invalid reference format')
            # two pods asking at once share one pull
            a, b = await asyncio.gather(mgr.ensure_image(image, None, on_event=lambda *ev: events.append(ev)),
                                        mgr.ensure_image(image, "Always"))
            assert a.id == b.id and mgr.pull_count == 1
            assert a.config.cmd == ["sh"]
            digest = busybox_archive.manifests["docker.io/library/busybox:latest"]
            assert a.repo_digests == [f"{busybox_registry.host}/library/busybox@{digest}"]
            assert [r for _, r, _ in events] == ["Pulling", "Pulled"]
            assert events[1][2].startswith(f'Successfully pulled image "{image}" in ')
            # present: IfNotPresent and Never do not pull, Always does (manifest only)
            assert (await mgr.ensure_image(image, "IfNotPresent")).id == a.id and mgr.pull_count == 1
            assert (await mgr.ensure_image(image, "Never")).id == a.id and mgr.pull_count == 1
            assert (await mgr.ensure_image(image, "Always")).id == a.id and mgr.pull_count == 2
            # an absent tag: ErrImagePull with containerd's wording, then back-off
            missing = f"{busybox_registry.host}/library/busybox:nope"
            with pytest.raises(ImagePullError) as e:
                await mgr.ensure_image(missing, "IfNotPresent")
            assert e.value.reason == "ErrImagePull"
            assert e.value.message == (f'failed to pull and unpack image "{missing}": failed to resolve reference '
                                       f'"{missing}": {missing}: not found')
            with pytest.raises(ImagePullError) as e:
                await mgr.ensure_image(missing, "IfNotPresent")
            assert e.value.reason == "ImagePullBackOff" and mgr.pull_count == 3
            assert e.value.message.startswith(f'Back-off pulling image "{missing}": ErrImagePull: ')
        finally:
            await mgr.close()
    asyncio.run(main())


@root_only
def test_pull_through_a_docker_io_mirror(busybox_registry: Registry, busybox_archive: BusyboxArchive,
                                         store: ImageStore) -> None:
    async def main() -> None:
        mgr = ImageManager(store, mirrors=parse_registry_mirrors([f"docker.io={busybox_registry.base}"]))
        try:
            bb = await mgr.ensure_image("busybox", "IfNotPresent")
            httpd = await mgr.ensure_image("httpd:latest")
        finally:
            await mgr.close()
        assert bb.repo_tags == ["docker.io/library/busybox:latest"]
        assert httpd.repo_tags == ["docker.io/library/httpd:latest"]
        assert httpd.repo_digests == [f"docker.io/library/httpd@{busybox_archive.manifests['docker.io/library/httpd:latest']}"]
        assert httpd.config.cmd[:2] == ["httpd", "-f"] and httpd.config.exposed_ports == ["80/tcp"]
        assert bb.layer_dirs == httpd.layer_dirs  # one shared layer, stored once
        with open(os.path.join(httpd.layer_dirs[0], "usr/local/apache2/htdocs/index.html")) as f:
            assert "It works!" in f.read()
    asyncio.run(main())


@root_only
def test_pull_secrets_against_a_password_registry(busybox_archive: BusyboxArchive, store: ImageStore) -> None:
    clock = Clock()
    with Registry(auth=("alice", "pa55")) as reg:
        reg.push_archive(busybox_archive.path, "private/httpd:v1")
        image = f"{reg.host}/private/httpd:v1"
        good = dockerconfigjson({reg.host: {"username": "alice", "password": "pa55"}})
        wrong = dockerconfigjson({f"http://{reg.host}": {"auth": b64("alice:wrong")}})
        other = dockerconfigjson({"elsewhere.io": {"username": "alice", "password": "pa55"}})

        async def main() -> None:
            mgr = ImageManager(store, backoff_base=10, backoff_max=300, clock=clock)
            try:
                for n, secrets in enumerate(([], [other], [wrong])):
                    with pytest.raises(ImagePullError) as e:
                        await mgr.ensure_image(image, "IfNotPresent", secrets, backoff_key=f"pod{n}_{image}")
                    assert e.value.reason == "ErrImagePull"
                    assert "pull access denied" in e.value.message and image in e.value.message
                with pytest.raises(ImagePullError) as e:  # in back-off: no registry call
                    await mgr.ensure_image(image, "IfNotPresent", [good], backoff_key=f"pod2_{image}")
                assert e.value.reason == "ImagePullBackOff" and mgr.pull_count == 3
                clock.now += 10
                img = await mgr.ensure_image(image, "IfNotPresent", [wrong, good], backoff_key=f"pod2_{image}")
                assert img.repo_tags == [image] and img.config.exposed_ports == ["80/tcp"]
                # a later pull with a wrong password is refused although a token was cached for the good one
                with pytest.raises(ImagePullError) as e:
                    await mgr.ensure_image(image, "Always", [wrong], backoff_key=f"pod9_{image}")
                assert e.value.reason == "ErrImagePull"
            finally:
                await mgr.close()
        asyncio.run(main())


@root_only
def test_image_gc_frees_least_recently_used(busybox_archive: BusyboxArchive, store: ImageStore) -> None:
    images = {i.repo_tags[0]: i for i in import_archive(store, busybox_archive.path)}
    bb, httpd = images["docker.io/library/busybox:latest"], images["docker.io/library/httpd:latest"]
    size = bb.size
    clock = Clock()
    usage = {"capacity": 10 * size, "available": 5 * size}

    async def main() -> None:
        mgr = ImageManager(store, disk_usage=lambda: (usage["capacity"], usage["available"]), clock=clock)
        try:
            r = await mgr.garbage_collect(set())  # 50%: records the images, frees nothing
            assert r.usage_percent == 50 and r.bytes_to_free == 0 and r.removed == []
            clock.now += 60
            await mgr.garbage_collect({httpd.repo_digests[0]})  # httpd in use (named by repo digest)
            usage["available"] = size  # 90% used: free 2*size - size = one image's worth
            clock.now += 30
            r = await mgr.garbage_collect(set(), min_age=120)  # both younger than min_age
            assert r.bytes_to_free == size and r.removed == [] and not r.ok and "only found 0 bytes" in r.message
            clock.now += 60
            r = await mgr.garbage_collect(set(), min_age=120)
            assert r.removed == [bb.id] and r.ok  # busybox never used: goes first
            assert store.find("busybox") is None and store.find("httpd") is not None
            assert os.path.isdir(httpd.layer_dirs[0])  # the shared layer stays
            r = await mgr.garbage_collect({httpd.id}, min_age=120)
            assert r.removed == [] and not r.ok  # in use
        finally:
            await mgr.close()
    asyncio.run(main())


@root_only
def test_offline_always_uses_the_stored_image(busybox_archive: BusyboxArchive, store: ImageStore) -> None:
    clock = Clock()
    with Registry() as reg:
        reg.push_archive(busybox_archive.path, "library/busybox:latest")
        image = f"{reg.host}/library/busybox:latest"

        async def pull() -> Any:
            mgr = ImageManager(store)
            try:
                return await mgr.ensure_image(image, "Always")
            finally:
                await mgr.close()
        stored = asyncio.run(pull())
    # the registry is gone (its port refuses connections)
    events: list[tuple[str, str, str]] = []

    async def main() -> None:
        mgr = ImageManager(store, clock=clock)
        strict = ImageManager(store, offline_fallback=False)
        try:
            img = await mgr.ensure_image(image, "Always", on_event=lambda *ev: events.append(ev))
            assert img.id == stored.id and mgr.pull_count == 1
            assert events[-1][:2] == ("Warning", "Failed") and "using the image present" in events[-1][2]
            assert (await mgr.ensure_image(image, "Always")).id == stored.id and mgr.pull_count == 1  # not asked again
            clock.now += 31
            assert (await mgr.ensure_image(image, "Always")).id == stored.id and mgr.pull_count == 2
            with pytest.raises(ImagePullError) as e:
                await strict.ensure_image(image, "Always")
            assert e.value.reason == "ErrImagePull"
            assert e.value.message.startswith(f"image pull failed for {image} because the registry is unavailable")
            with pytest.raises(ImagePullError) as e:  # absent: nothing to fall back on
                await mgr.ensure_image(f"{reg.host}/library/other:1", "IfNotPresent")
            assert e.value.reason == "ErrImagePull"
        finally:
            await mgr.close()
            await strict.close()
    asyncio.run(main())
