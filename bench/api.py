"""The bench's HTTP client of the service: only the public API of docs/api.md.

Every thread has its own pooled requests.Session (trust_env=False, so no
proxy lookup per request). Publishing many events runs `threads` such
sessions in parallel; each records when it sent the request (the start of
publish->receipt latency) and when the 202 arrived.
"""

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from bench.payloads import EVENT_TYPE


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        hint = ""
        if status in (404, 405):
            hint = " (is this endpoint implemented yet?)"
        super().__init__(f"{method} {path} answered {status}{hint}: {body[:300]}")
        self.status = status


class DeadlineExceeded(RuntimeError):
    pass


@dataclass
class Published:
    """One publish: its body's place in the batch, timing and answer."""

    index: int
    sent: float  # time.time() just before the request
    answered: float  # time.time() when the answer was read
    status: int
    event_id: str
    deliveries: int | None
    paths: Sequence[str] = field(default=())  # the sink paths it should reach


class Api:
    def __init__(
        self, base_url: str, key: str, *, timeout: float = 30, batch: int = 1
    ) -> None:
        self.base_url = base_url
        self.key = key
        self.timeout = timeout
        # publish_many: events per request (1: POST /api/v1/events each;
        # more: POST /batch/api/v1/events with up to this many).
        self.batch = batch
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {self.key}"
            self._local.session = session
        return session

    def call(
        self, method: str, path: str, body: object = None, *, ok: Sequence[int]
    ) -> tuple[int, object]:
        """One request; a 429 waits its Retry-After (bounded); other non-`ok`
        statuses raise ApiError."""
        for _ in range(20):
            response = self._session().request(
                method, self.base_url + path, json=body, timeout=self.timeout
            )
            if response.status_code == 429:
                time.sleep(min(float(response.headers.get("Retry-After", 1)), 5))
                continue
            break
        if response.status_code not in ok:
            raise ApiError(method, path, response.status_code, response.text)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def create_webhook(
        self, *, url: str, tracking_id: str | None = None, event_groups=(EVENT_TYPE,)
    ) -> dict:
        body: dict = {"event_groups": list(event_groups), "configuration": {"url": url}}
        if tracking_id is not None:
            body["trackingId"] = tracking_id
        _, answer = self.call("POST", "/api/v1/webhooks", body, ok=(201,))
        return answer

    def create_webhooks(
        self, specs: Sequence[dict], *, threads: int, deadline: float
    ) -> list[dict]:
        """create_webhook(**spec) for every spec, `threads` at a time."""
        return _parallel(
            lambda spec: self.create_webhook(**spec), specs, threads, deadline
        )

    def publish(self, event: dict, *, index: int = 0, paths=()) -> Published:
        sent = time.time()
        status, answer = self.call("POST", "/api/v1/events", event, ok=(200, 202))
        answered = time.time()
        return Published(
            index=index,
            sent=sent,
            answered=answered,
            status=status,
            event_id=str(answer.get("id")) if isinstance(answer, dict) else "",
            deliveries=answer.get("deliveries") if isinstance(answer, dict) else None,
            paths=paths,
        )

    def publish_batch(
        self, events: Sequence[tuple[int, dict, Sequence[str]]]
    ) -> list[Published]:
        """(index, event, paths) triples in one POST /batch/api/v1/events."""
        sent = time.time()
        body = {"events": [event for _, event, _ in events]}
        status, answer = self.call("POST", "/batch/api/v1/events", body, ok=(200, 202))
        answered = time.time()
        return [
            Published(
                index=index,
                sent=sent,
                answered=answered,
                status=status,
                event_id=str(item["id"]),
                deliveries=item["deliveries"],
                paths=paths,
            )
            for (index, _, paths), item in zip(events, answer["events"], strict=True)
        ]

    def publish_many(
        self,
        events: Sequence[tuple[dict, Sequence[str]]],
        *,
        threads: int,
        deadline: float,
    ) -> list[Published]:
        """Publish (event, expected sink paths) pairs from `threads` threads,
        `self.batch` events per request."""
        indexed = [(n, event, paths) for n, (event, paths) in enumerate(events)]
        if self.batch <= 1:
            return _parallel(
                lambda item: self.publish(item[1], index=item[0], paths=item[2]),
                indexed,
                threads,
                deadline,
            )
        chunks = [
            indexed[start : start + self.batch]
            for start in range(0, len(indexed), self.batch)
        ]
        answers = _parallel(self.publish_batch, chunks, threads, deadline)
        return [item for answer in answers for item in answer]


def _parallel(work: Callable, items: Sequence, threads: int, deadline: float) -> list:
    """work(item) for every item from `threads` threads, in item order.

    Stops handing out items at the deadline (raises DeadlineExceeded) or on
    the first error (re-raised).
    """
    results: list = [None] * len(items)
    cursor = iter(range(len(items)))
    lock = threading.Lock()
    failure: list[BaseException] = []

    def worker() -> None:
        while not failure:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            if time.monotonic() >= deadline:
                failure.append(
                    DeadlineExceeded(f"stopped after {index} of {len(items)}")
                )
                return
            try:
                results[index] = work(items[index])
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failure.append(exc)
                return

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for _ in range(max(1, threads)):
            pool.submit(worker)
    if failure:
        raise failure[0]
    return results
