"""The client-side request rate limit (fault K8): a token bucket per cluster, like client-go's QPS/burst."""

from __future__ import annotations

import asyncio

from core.aio import TokenBucket
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig
from core.settings import WatchSettings


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_a_burst_goes_at_once_and_the_rest_are_spaced_at_the_rate() -> None:
    """burst=5, rate=10/s: five takes at once wait nothing; the next five wait 0.1 s, 0.2 s … 0.5 s (each
    reserved in the order asked); after a quiet second the bucket is full again."""
    t = FakeTime()
    bucket = TokenBucket(10, 5, clock=t.clock, sleep=t.sleep)
    waited = [await bucket.take() for _ in range(10)]
    assert waited[:5] == [0.0] * 5
    assert [round(w, 6) for w in waited[5:]] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert bucket.waits == 5 and round(bucket.waited, 6) == 1.5
    t.now += 1.0 + 0.5  # the debt of 5 tokens is repaid after 0.5 s, then 1 s refills the burst
    assert [await bucket.take() for _ in range(5)] == [0.0] * 5
    assert await bucket.take() > 0


async def test_concurrent_takes_are_spaced_without_a_lock() -> None:
    """Takes started together reserve tokens one after another before any of them sleeps."""
    t = FakeTime()
    bucket = TokenBucket(50, 100, clock=t.clock, sleep=t.sleep)
    waited = await asyncio.gather(*(bucket.take() for _ in range(130)))
    assert sum(1 for w in waited if w == 0) == 100 and bucket.waits == 30
    assert round(max(waited), 6) == round(30 / 50, 6)


def test_every_cluster_client_has_the_limit_from_its_settings() -> None:
    """50 requests/s with bursts of 100 by default (as many Kubernetes tools choose over client-go's 5/10);
    ``qps=0`` turns it off."""
    context = ContextConfig(name="c", server="https://127.0.0.1:1")
    client = KubeClient(cluster="c", context=context)
    assert client.rate_limit is not None
    assert (client.rate_limit.rate, client.rate_limit.burst) == (50.0, 100)
    assert KubeClient(cluster="c", context=context, settings=WatchSettings(qps=0)).rate_limit is None
