"""The service under fault: its processes on private servers, talked to over
HTTP only (publish, create webhooks), its rows read with psycopg2.

    service = FaultService(stack=..., database_url=..., keys=...)
    service.start_web()
    webhook_id = service.create_webhook(ledger.url())
    publisher = service.publisher(count=150, per_second=50).start()
    ...  # inject the fault
    settle(service, ledger, publisher, name="worker killed")
"""

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import requests

from tests.support.ports import free_port
from tests.support.receiver import Receiver, Reply
from tests.support.stack import ServiceProcess, Stack
from tests.support.waiting import wait_until

UNFINISHED = ("pending", "held")
ENVELOPE_KEYS = {"uuid", "status", "reason"}


@dataclass(frozen=True)
class Keys:
    publisher: str  # client `platform`, scope publish
    tenant: str  # client `acme`, scope subscriptions


@dataclass
class FaultService:
    stack: Stack
    database_url: str
    keys: Keys
    web: ServiceProcess | None = None
    base_url: str = ""
    # The address the web process listens on (its host's, in tests/multihost).
    host: str = "127.0.0.1"

    def start_web(self) -> ServiceProcess:
        port = free_port()
        self.web = self.stack.start_web(port=port, host=self.host)
        self.base_url = f"http://{self.host}:{port}"
        wait_until(self._healthy, timeout=30, interval=0.1, message="the web process")
        return self.web

    def create_webhook(self, url: str) -> str:
        response = requests.post(
            f"{self.base_url}/api/v1/webhooks",
            json={"event_groups": ["DELIVERED"], "configuration": {"url": url}},
            headers={"Authorization": f"Bearer {self.keys.tenant}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def publisher(
        self, *, count: int, per_second: float, batch: int = 1
    ) -> "Publisher":
        return Publisher(self, count=count, per_second=per_second, batch=batch)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg2.connect(self.database_url, connect_timeout=3) as connection:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
        connection.close()
        return rows

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/health", timeout=2).ok
        except requests.RequestException:
            return False


@dataclass
class Publisher:
    """A thread POSTing `count` events at about `per_second`, one per request
    or `batch` per request to the batch endpoint, each with its own `id`.
    Records the ids answered 202 (the must-arrive ledger), the 503 envelopes
    (and the `id`s they refused), and anything else (an HTML 500, a hang past
    the timeout) as unexpected."""

    service: FaultService
    count: int
    per_second: float
    batch: int = 1
    accepted: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    refused_ids: list[str] = field(default_factory=list)  # the body's `id`s
    unexpected: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def __post_init__(self) -> None:
        self._answered = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Publisher":
        self._thread.start()
        return self

    def join(self) -> "Publisher":
        # count / rate plus a 10 s timeout per request at most: bounded
        self._thread.join(timeout=self.count / self.per_second + 120)
        assert not self._thread.is_alive(), "the publisher did not finish"
        return self

    def wait_for(self, published: int, timeout: float = 30.0) -> None:
        """Until `published` answers (of any kind) came back."""
        wait_until(
            lambda: self.answered >= published,
            timeout=timeout,
            message=f"{published} publish answers",
        )

    @property
    def answered(self) -> int:
        """Events whose publish has been answered (in any way)."""
        return self._answered

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {self.service.keys.publisher}"
        prefix = "/batch" if self.batch > 1 else ""
        url = f"{self.service.base_url}{prefix}/api/v1/events"
        started = time.monotonic()
        for n in range(0, self.count, self.batch):
            # paced on the schedule, not on the answers: a slow answer does
            # not slow the traffic that follows
            lag = started + n / self.per_second - time.monotonic()
            if lag > 0:
                time.sleep(lag)
            events = [
                {
                    "id": str(uuid.uuid4()),
                    "type": "DELIVERED",
                    "tenant": "acme",
                    "payload": {"n": i},
                }
                for i in range(n, min(n + self.batch, self.count))
            ]
            body = {"events": events} if prefix else events[0]
            sent = time.monotonic()
            try:
                response = session.post(url, json=body, timeout=(2, 10))
            except requests.RequestException as exc:
                self.unexpected.append(f"#{n}: {exc.__class__.__name__}: {exc}")
            else:
                self.slowest = max(self.slowest, time.monotonic() - sent)
                self._record(n, response, [event["id"] for event in events])
            self._answered += len(events)

    def _record(self, n: int, response: requests.Response, ids: list[str]) -> None:
        if response.status_code == 202:
            body = response.json()
            answers = body["events"] if self.batch > 1 else [body]
            self.accepted.extend(answer["id"] for answer in answers)
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        if (
            response.status_code == 503
            and isinstance(body, dict)
            and ENVELOPE_KEYS <= body.keys()
            and body["status"] == "503"
        ):
            self.refused.append(body)
            self.refused_ids.extend(ids)
        else:
            self.unexpected.append(
                f"#{n}: {response.status_code} {response.text[:200]!r}"
            )


@dataclass(frozen=True)
class Outcome:
    published: int
    received: int
    duplicates: int
    refused: int


def settle(
    service: FaultService,
    ledger: Receiver,
    publisher: Publisher,
    *,
    name: str,
    timeout: float = 60.0,
) -> Outcome:
    """The end of every scenario: each 202-answered id received at least once,
    no delivery left unfinished (none past its TTL), the figures printed."""
    publisher.join()
    assert not publisher.unexpected, publisher.unexpected[:5]
    accepted = publisher.accepted
    assert accepted, "nothing was published"
    try:
        wait_until(
            lambda: not ledger.missing(accepted),
            timeout=timeout,
            interval=0.1,
            message=f"all {len(accepted)} accepted events to arrive",
        )
        wait_until(
            lambda: not unfinished(service),
            timeout=30,
            interval=0.1,
            message="every delivery to finish",
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nmissing: {ledger.missing(accepted)[:10]}\n"
            f"unfinished: {unfinished(service)[:10]}\n{service.stack.logs()}"
        ) from None
    stuck = service.query(
        "SELECT count(*) FROM delivery_delivery "
        "WHERE status = ANY(%s) AND expires_at <= now()",
        list(UNFINISHED),
    )[0][0]
    assert stuck == 0
    statuses = dict(
        service.query("SELECT status, count(*) FROM delivery_delivery GROUP BY 1")
    )
    assert set(statuses) == {"succeeded"}, statuses
    # Beyond the 202s, only events whose 503 came after their COMMIT went
    # through (the answer lost with the connection): publishing them again
    # with their `id` is a repeat, as docs/api.md says.
    beyond = service.query(
        "SELECT idempotency_key FROM events_event WHERE NOT id::text = ANY(%s)",
        accepted,
    )
    assert {key for (key,) in beyond} <= set(publisher.refused_ids), beyond
    assert statuses["succeeded"] == len(accepted) + len(beyond), statuses
    outcome = Outcome(
        published=len(accepted),
        received=len(set(ledger.counts()) & set(accepted)),
        duplicates=ledger.duplicates(),
        refused=len(publisher.refused),
    )
    print(
        f"fault {name}: published {outcome.published}, received {outcome.received}, "
        f"duplicates {outcome.duplicates} (refused with 503: {outcome.refused}, "
        f"slowest publish {publisher.slowest:.2f} s)"
    )
    return outcome


def unfinished(service: FaultService) -> list[tuple[Any, ...]]:
    return service.query(
        "SELECT id, status, attempts_count, next_attempt_at, lease_token "
        "FROM delivery_delivery WHERE status = ANY(%s)",
        list(UNFINISHED),
    )


def acknowledged_attempts(service: FaultService) -> int:
    """Attempts the receiver answered 2xx: one per delivery unless one was
    sent twice (the ledger answers every request 200)."""
    return service.query("SELECT count(*) FROM delivery_attempt WHERE outcome = 'ack'")[
        0
    ][0]


def kill_a_worker_mid_request(
    service: FaultService, ledger: Receiver, *, name: str
) -> Outcome:
    """Publish 150 events at 50/s to a slow ledger (requests are in flight),
    SIGKILL the only worker, start another; settle. The dead worker's
    unacknowledged messages and leased rows come back: nothing is lost, and
    only what it had in flight (at most its batch) is sent again."""
    ledger.default = Reply(delay=0.2)
    service.create_webhook(ledger.url())
    doomed = service.stack.start_worker(name="doomed")
    service.stack.start_beat()
    publisher = service.publisher(count=150, per_second=50).start()

    publisher.wait_for(50)
    wait_until(lambda: ledger.counts(), message="requests in flight")
    doomed.kill()
    service.stack.start_worker(name="survivor")

    outcome = settle(service, ledger, publisher, name=name)
    assert outcome.duplicates <= 100
    return outcome
