"""What every scenario shares: sizes, the sink, the keys, a fresh stack."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import payloads, procs
from bench.api import Api
from bench.sink_client import Sink
from bench.stack import (
    Database,
    Stack,
    StackError,
    base_env,
    create_api_key,
    flush_redis,
    migrated_template,
)

SUBSCRIBER = "bench-acme"  # owns every webhook (scope subscriptions)
PUBLISHER = "bench-platform"  # publishes every event (scope publish)


def prepare_database(
    database: Database,
    *,
    redis_url: str,
    log_dir: Path,
    env_extra: dict[str, str],
    prefix: str = "",
) -> tuple[dict[str, str], dict[str, str]]:
    """Migrate the bench's template database and create the two clients' API
    keys in it; returns the environment it used and the keys by client name
    (SUBSCRIBER, PUBLISHER).
    `prefix`: as in migrated_template."""
    env = migrated_template(
        database, redis_url=redis_url, log_dir=log_dir, extra=env_extra, prefix=prefix
    )
    return env, {
        name: create_api_key(
            client=name,
            scopes=[scope],
            database=database,
            env=env,
            log=log_dir / f"{prefix}keys.log",
        )
        for name, scope in ((SUBSCRIBER, "subscriptions"), (PUBLISHER, "publish"))
    }


PROCESSES = ("web", "worker", "beat")


@dataclass(frozen=True)
class Sizes:
    burst_events: int
    single_events: int  # one per POST /api/v1/events (and the ceiling's)
    peer_events: int  # published to django-webhook
    webhooks: int  # subscriptions the burst, slow and dead events spread over
    idle_events: int
    slow_deliveries: int
    fanout_subscriptions: int
    backlog_rows: int
    noisy_backlog: int  # tenant A's due deliveries (noisy neighbour)
    noisy_events: int  # tenant B's events
    noisy_window: float  # seconds of each window A's rate is measured over
    idle_cpu_seconds: float
    settle_seconds: float
    ceiling_seconds: float
    scenario_timeout: float
    overall_timeout: float


FULL = Sizes(
    burst_events=20_000,
    single_events=20_000,
    peer_events=3_000,
    webhooks=20,
    idle_events=200,
    slow_deliveries=2_000,
    fanout_subscriptions=10_000,
    backlog_rows=1_000_000,
    noisy_backlog=50_000,
    noisy_events=200,
    noisy_window=10,
    idle_cpu_seconds=20,
    settle_seconds=5,
    ceiling_seconds=5,
    scenario_timeout=600,
    overall_timeout=3 * 3600,
)
QUICK = Sizes(
    burst_events=300,
    single_events=300,
    peer_events=100,
    webhooks=20,
    idle_events=20,
    slow_deliveries=50,
    fanout_subscriptions=200,
    backlog_rows=10_000,
    noisy_backlog=5_000,
    noisy_events=20,
    noisy_window=1,
    idle_cpu_seconds=3,
    settle_seconds=1,
    ceiling_seconds=1,
    scenario_timeout=60,
    overall_timeout=200,
)


@dataclass
class Running:
    """A started stack and the clients of it."""

    stack: Stack
    subscriber: Api
    publisher: Api
    sink: Sink

    def alive(self) -> None:
        self.stack.check_alive()

    def wait_received(
        self, count: int, *, deadline: float, mode: str = "fast", answered: bool = False
    ) -> bool:
        key = "answered" if answered else "distinct"
        return self.sink.wait_until(
            lambda stats: stats[key].get(mode, 0) >= count,
            deadline=deadline,
            alive=self.alive,
        )

    def warm_up(self, *, timeout: float) -> None:
        """One event end to end, so the scenario starts on a working pipeline
        with warm processes (and fails early, clearly, if it is not)."""
        self.subscriber.create_webhook(
            url=self.sink.url("/fast/warmup"), tracking_id="WARMUP"
        )
        self.publisher.publish(payloads.event(seq=0, resource_id="WARMUP"))
        if not self.wait_received(1, deadline=time.monotonic() + timeout):
            raise StackError(
                f"the warm-up event was not delivered within {timeout:.0f} s: "
                "is the delivery pipeline (worker, dispatcher) there yet? "
                f"Logs: {self.stack.log_dir}"
            )
        self.sink.reset()


@dataclass
class Context:
    sizes: Sizes
    database: Database
    redis_url: str
    sink: Sink
    subscriber_key: str
    publisher_key: str
    log_dir: Path
    publishers: int
    batch: int = 1  # events per publish request
    workers: int = 1  # copies of the Procfile's worker
    env_extra: dict[str, str] = field(default_factory=dict)
    # Start-up and shutdown times of the last stack, for the JSON details.
    timings: dict[str, float] = field(default_factory=dict)

    def deadline(self) -> float:
        return time.monotonic() + self.sizes.scenario_timeout

    @contextmanager
    def stack(
        self,
        name: str,
        *,
        extra_env: dict[str, str] | None = None,
        processes: tuple[str, ...] = PROCESSES,
        allow: tuple[str, ...] = (),
    ) -> Iterator[Running]:
        """A fresh database and Redis db, the Procfile processes, a warm-up.

        The SSRF guard is on and allows the sink's two ports and `allow`
        (address:port pairs) only.

        The processes are stopped (process groups, SIGTERM then SIGKILL) when
        the block exits, however it exits.
        """
        self.timings = {}
        log_dir = self.log_dir / name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.database.recreate()
        flush_redis(self.redis_url)
        self.sink.reset()
        env = base_env(
            database_url=self.database.url,
            redis_url=self.redis_url,
            var_dir=log_dir / "var",
            extra={
                # The guard on, open for exactly the sink (and what a scenario adds).
                "WEBHOOK_SSRF_ALLOWLIST": ",".join([self.sink.allowlist(), *allow]),
                **self.env_extra,
                **(extra_env or {}),
            },
        )
        stack = Stack(
            env=env,
            log_dir=log_dir,
            port=procs.free_port(),
            scale={"worker": self.workers},
        )
        started = time.monotonic()
        try:
            stack.start(*processes)
            stack.wait_healthy(time.monotonic() + 60)
            self.timings["healthy_s"] = time.monotonic() - started
            running = Running(
                stack=stack,
                subscriber=Api(stack.base_url, self.subscriber_key),
                publisher=Api(stack.base_url, self.publisher_key, batch=self.batch),
                sink=self.sink,
            )
            if "worker" in processes:
                running.warm_up(timeout=60)
            self.timings["ready_s"] = time.monotonic() - started
            yield running
        finally:
            stopping = time.monotonic()
            stack.stop()
            self.timings["stop_s"] = time.monotonic() - stopping
