"""Nothing acknowledged is lost: kill -9 of the API server in the middle of a
stream of writes, then restart on the same data; and compaction makes old
revisions answer 410 Expired — on both backends."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.support.etcd import EtcdProcess

from .conftest import Raw, Server


@pytest.fixture(params=["sqlite", "etcd"])
def backend(request):
    if request.param == "sqlite":
        yield ""
        return
    etcd = EtcdProcess()
    etcd.start()
    try:
        yield "etcd://" + etcd.url.removeprefix("http://")
    finally:
        etcd.close()


def test_kill9_keeps_acknowledged_writes(backend):
    srv = Server(datastore=backend).start()
    try:
        api = Raw(srv)
        acked: list[str] = []
        stop = threading.Event()

        def writer(worker: int) -> None:
            i = 0
            while not stop.is_set():
                name = f"k-{worker}-{i}"
                try:
                    code, _ = api("POST", "/api/v1/namespaces/default/configmaps",
                                  {"metadata": {"name": name}, "data": {"i": str(i)}})
                except Exception:  # noqa: BLE001 - the server is being killed
                    return
                if code == 201:
                    acked.append(name)
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        for t in threads:
            t.join(30)
        assert len(acked) > 50
        srv.start()
        api = Raw(srv)
        code, body = api("GET", "/api/v1/namespaces/default/configmaps")
        assert code == 200
        stored = {i["metadata"]["name"] for i in body["items"]}
        missing = [n for n in acked if n not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
    finally:
        srv.close()


def test_compacted_revisions_expire(backend):
    srv = Server(datastore=backend, extra_args=("--compaction-interval", "1")).start()
    try:
        api = srv.client()
        core = client.CoreV1Api(api)
        first = core.create_namespaced_config_map("default", {"metadata": {"name": "c0"}})
        old_rv = first.metadata.resource_version
        page = core.list_namespaced_config_map("default", limit=1)
        for i in range(1, 6):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        time.sleep(3.5)  # two compaction ticks: the old revision is gone
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=old_rv, timeout_seconds=3):
                pass
        assert e.value.status == 410
        raw = Raw(srv)
        code, body = raw("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}")
        assert code == 200 and body["type"] == "ERROR"
        assert body["object"]["code"] == 410 and body["object"]["reason"] == "Expired"
        if page.metadata._continue:
            code, body = raw("GET", "/api/v1/namespaces/default/configmaps?limit=1&continue="
                             + page.metadata._continue)
            assert code == 410 and body["reason"] == "Expired"
        code, body = raw("GET", f"/api/v1/namespaces/default/configmaps?resourceVersion={old_rv}"
                                "&resourceVersionMatch=Exact")
        assert code == 410 and body["reason"] == "Expired"
    finally:
        srv.close()
