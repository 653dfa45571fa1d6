"""/metrics counts every process of a host: two gunicorn web workers take
the publishes and answer the scrapes, two Celery worker processes make the
attempts, and each scrape (whichever web worker answers it) reports the
totals of all four, through prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, shared as on one host; webhooks_project/metrics.py).
"""

import glob
import os
import threading
from collections import Counter

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from delivery.models import Attempt, Delivery
from subscriptions.services import create_api_key
from tests.support.ports import free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVENTS = 40
TOKEN = "metrics-test-token"


def scrape(base_url: str) -> dict[str, dict[tuple, float]]:
    response = requests.get(
        f"{base_url}/metrics",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def counted_by_process(directory: str, metric: str) -> Counter:
    """metric's total in each process's own file (counter_<pid>.db)."""
    counts: Counter = Counter()
    for path in glob.glob(os.path.join(directory, "counter_*.db")):
        for family in MultiProcessCollector.merge([path]):
            if family.name == metric:
                pid = os.path.basename(path).removesuffix(".db").split("_")[-1]
                counts[pid] += sum(s.value for s in family.samples)
    return +counts


def test_a_scrape_sums_the_counts_of_every_web_and_worker_process(
    stack: Stack, receiver, tmp_path
):
    directory = str(tmp_path / "prometheus")
    shared = {
        "PROMETHEUS_MULTIPROC_DIR": directory,
        "WEBHOOK_METRICS_TOKEN": TOKEN,
        # Small claims, so that both workers get a share of the deliveries.
        "WEBHOOK_BATCH_SIZE": "2",
    }
    port = free_port()
    stack.start_web(port=port, workers=2, threads=4, **shared)
    for name in ("metrics-a", "metrics-b"):
        stack.start_worker(concurrency=2, name=name, **shared)
    base_url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.trust_env = False

    def healthy() -> bool:
        try:
            return session.get(f"{base_url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    wait_until(healthy, timeout=60, interval=0.1, message="the web to serve")
    before = scrape(base_url)
    assert sum(before["webhook_attempts_total"].values()) == 0
    assert before["webhook_events_published_total"] == {(): 0}

    _, subscriber = create_api_key(client_name="acme", scopes=["subscriptions"])
    _, publisher = create_api_key(client_name="platform", scopes=["publish"])
    created = session.post(
        f"{base_url}/api/v1/webhooks",
        headers={"Authorization": f"Bearer {subscriber}"},
        json={"event_groups": ["DELIVERED"], "configuration": {"url": receiver.url()}},
        timeout=15,
    )
    assert created.status_code == 201, created.text

    def publish(index: int) -> None:
        # A session per thread: separate connections, so both web workers
        # take publishes.
        with requests.Session() as own:
            own.trust_env = False
            response = own.post(
                f"{base_url}/api/v1/events",
                headers={"Authorization": f"Bearer {publisher}"},
                json={
                    "type": "DELIVERED",
                    "tenant": "acme",
                    "payload": {"n": index},
                    "id": f"metrics-{index}",
                },
                timeout=15,
            )
            assert response.status_code in (200, 202), response.text

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(EVENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # A repeat under a key already used publishes nothing: not counted.
    publish(0)

    wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == EVENTS,
        timeout=60,
        message=f"{EVENTS} deliveries to succeed",
    )
    receiver.wait_for(EVENTS, timeout=10)
    assert Attempt.objects.count() == EVENTS

    def all_counted() -> dict | None:
        # Counts are taken when each flush commits, a moment after the rows.
        samples = scrape(base_url)
        if sum(samples["webhook_attempts_total"].values()) == EVENTS:
            return samples
        return None

    samples = wait_until(all_counted, timeout=10, message="attempts to be counted")
    assert samples["webhook_attempts_total"][(("outcome", "ack"),)] == EVENTS
    assert samples["webhook_events_published_total"] == {(): EVENTS}
    finished = samples["webhook_deliveries_finished_total"]
    assert finished[(("status", "succeeded"),)] == EVENTS
    assert sum(finished.values()) == EVENTS
    assert samples["webhook_attempt_duration_seconds_count"] == {(): EVENTS}
    assert samples["webhook_attempt_duration_seconds_bucket"][(("le", "+Inf"),)] == (
        EVENTS
    )
    # The database gauges are still served.
    assert samples["webhook_deliveries_due"] == {(): 0}
    assert samples["webhook_subscriptions"][(("status", "active"),)] == 1

    # Whichever web worker answers, the totals are the same.
    for _ in range(6):
        again = scrape(base_url)
        assert sum(again["webhook_attempts_total"].values()) == EVENTS
        assert again["webhook_events_published_total"] == {(): EVENTS}
    # And they are sums: both worker processes made attempts, and both web
    # workers took publishes.
    attempts = counted_by_process(directory, "webhook_attempts")
    assert sum(attempts.values()) == EVENTS
    assert len(attempts) == 2, attempts
    published = counted_by_process(directory, "webhook_events_published")
    assert sum(published.values()) == EVENTS
    assert len(published) == 2, published
