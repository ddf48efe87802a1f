"""The work queue's contract: one copy of a key queued, never two workers on
one key, re-delivery after done, delays and back-off."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client.workqueue import RateLimiter, WorkQueue


def run(coro):
    return asyncio.run(coro)


def test_key_is_queued_once():
    async def go():
        q = WorkQueue()
        q.add("a"); q.add("a"); q.add("b")
        assert len(q) == 2
        assert await q.get() == "a"
        assert await q.get() == "b"
    run(go())


def test_key_added_while_processing_comes_back_after_done():
    async def go():
        q = WorkQueue()
        q.add("a")
        k = await q.get()
        q.add("a")
        assert len(q) == 0  # not handed to a second worker meanwhile
        q.done(k)
        assert len(q) == 1
        assert await q.get() == "a"
    run(go())


def test_get_waits_for_add():
    async def go():
        q = WorkQueue()
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        q.add("x")
        assert await asyncio.wait_for(waiter, 1) == "x"
    run(go())


def test_add_after_delays_and_keeps_earliest():
    async def go():
        q = WorkQueue()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        q.add_after("k", 0.2)
        q.add_after("k", 0.05)  # earlier wins
        q.add_after("k", 0.5)   # later is ignored
        assert await asyncio.wait_for(q.get(), 1) == "k"
        assert 0.04 <= loop.time() - t0 < 0.19
    run(go())


def test_rate_limiter_backs_off_exponentially_and_forgets():
    rl = RateLimiter(base=0.01, cap=1.0, qps=1000, burst=1000)
    assert [round(rl.when("k"), 3) for _ in range(4)] == [0.01, 0.02, 0.04, 0.08]
    assert rl.retries("k") == 4
    rl.forget("k")
    assert rl.when("k") == pytest.approx(0.01)
    for _ in range(20):
        rl.when("k")
    assert rl.when("k") == 1.0  # capped


def test_rate_limiter_bucket_limits_overall_rate():
    rl = RateLimiter(base=0.0, cap=0.0, qps=10, burst=2)
    delays = [rl.when(f"k{i}") for i in range(4)]
    assert delays[0] == 0 and delays[1] == 0
    assert delays[2] == pytest.approx(0.1, abs=0.02) and delays[3] == pytest.approx(0.2, abs=0.02)


def test_shutdown_wakes_getters():
    async def go():
        q = WorkQueue()
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        q.shutdown()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiter, 1)
    run(go())
