"""k8py's own client library against a real API server: informers keep a
cache by list + watch and relist after 410; leader election lets exactly
one candidate lead and hands over on release; events are aggregated.
(Assertions read the server with kubectl, not with the library itself.)"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from k8py.client import kubeconfig
from k8py.client.events import EventRecorder
from k8py.client.informer import InformerFactory
from k8py.client.leaderelection import LeaderElector
from k8py.client.rest import Client, resource
from tests.e2e.conftest import Server

CM = resource("configmaps")


@pytest.fixture(scope="module")
def compacting():
    s = Server(extra_args=("--compaction-interval", "1")).start()
    try:
        yield s
    finally:
        s.close()


def client(s: Server) -> Client:
    return Client(kubeconfig.load(s.kubeconfig))


def test_informer_follows_changes_and_relists_after_410(compacting: Server):
    s = compacting
    s.kubectl("create", "namespace", "inf")

    async def go():
        c = client(s)
        f = InformerFactory(c)
        inf = f.informer("configmaps", namespace="inf")
        events: list[tuple[str, str]] = []
        inf.add_handler(lambda o: events.append(("add", o["metadata"]["name"])),
                        lambda a, b: events.append(("update", b["metadata"]["name"])),
                        lambda o: events.append(("delete", o["metadata"]["name"])))
        f.start()
        await f.wait_for_sync(10)
        s.kubectl("-n", "inf", "create", "configmap", "a", "--from-literal=k=1")
        s.kubectl("-n", "inf", "label", "configmap", "a", "x=y")
        await _until(lambda: ("update", "a") in events)
        assert inf.store.get("inf/a")["metadata"]["labels"] == {"x": "y"}
        old_rv = inf.resource_version
        await f.stop()
        # while it is away: one object goes, one comes, history is compacted
        s.kubectl("-n", "inf", "delete", "configmap", "a")
        s.kubectl("-n", "inf", "create", "configmap", "b", "--from-literal=k=2")
        time.sleep(3.5)
        events.clear()
        inf.resource_version = old_rv  # resume from a revision that is gone: 410, relist
        inf.start()
        await _until(lambda: inf.store.get("inf/b") is not None and inf.store.get("inf/a") is None)
        assert ("delete", "a") in events and ("add", "b") in events
        assert inf.resource_version != old_rv
        await f.stop()
        await c.close()
    asyncio.run(go())


def test_leader_election_one_leader_then_handover(server: Server):
    async def go():
        c1, c2 = client(server), client(server)
        a = LeaderElector(c1, "lib-test", identity="a", lease_duration=2, renew_deadline=1.5, retry_period=0.2)
        b = LeaderElector(c2, "lib-test", identity="b", lease_duration=2, renew_deadline=1.5, retry_period=0.2)
        a_leads = asyncio.Event()
        a_may_stop = asyncio.Event()
        b_led = asyncio.Event()

        async def lead_a():
            a_leads.set()
            await a_may_stop.wait()

        async def lead_b():
            b_led.set()

        ta = asyncio.create_task(a.run(lead_a))
        await asyncio.wait_for(a_leads.wait(), 5)
        tb = asyncio.create_task(b.run(lead_b))
        await asyncio.sleep(1.0)
        assert not b_led.is_set()  # a holds and renews the lease
        lease = json.loads(server.kubectl("-n", "kube-system", "get", "lease", "lib-test", "-o", "json").stdout)
        assert lease["spec"]["holderIdentity"] == "a"
        a_may_stop.set()  # a releases on the way out; b takes over at once
        await asyncio.wait_for(ta, 5)
        await asyncio.wait_for(b_led.wait(), 3)
        await asyncio.wait_for(tb, 5)
        lease = json.loads(server.kubectl("-n", "kube-system", "get", "lease", "lib-test", "-o", "json").stdout)
        assert lease["spec"]["leaseTransitions"] == 1
        await c1.close(); await c2.close()
    asyncio.run(go())


def test_leader_election_takes_over_an_abandoned_lease(server: Server):
    async def go():
        c = client(server)
        gone = LeaderElector(c, "lib-abandoned", identity="gone", lease_duration=1, retry_period=0.1)
        assert await gone._try()  # takes the lease and then never renews it
        heir = LeaderElector(c, "lib-abandoned", identity="heir", lease_duration=1, retry_period=0.1)
        t0 = time.monotonic()
        led = asyncio.Event()

        async def lead():
            led.set()
        await asyncio.wait_for(heir.run(lead), 5)
        assert led.is_set() and time.monotonic() - t0 >= 0.9  # waited out the lease
        await c.close()
    asyncio.run(go())


def test_events_are_aggregated(server: Server):
    server.kubectl("create", "namespace", "ev")

    async def go():
        c = client(server)
        rec = EventRecorder(c, "lib-test")
        ns = await c.get(resource("namespaces"), "ev")
        for _ in range(3):
            rec.normal(ns, "Tested", "three times")
        rec.warning(ns, "Other", "once")
        await rec.flush()
        await asyncio.sleep(0.3)
        await rec.stop()
        await c.close()
    asyncio.run(go())
    out = json.loads(server.kubectl("-n", "default", "get", "events", "-o", "json",
                                    "--field-selector", "involvedObject.name=ev").stdout)
    by_reason = {e["reason"]: e for e in out["items"]}
    assert by_reason["Tested"]["count"] == 3 and by_reason["Tested"]["type"] == "Normal"
    assert by_reason["Tested"]["source"]["component"] == "lib-test"
    assert by_reason["Other"]["count"] == 1 and by_reason["Other"]["type"] == "Warning"


async def _until(fn, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.05)
