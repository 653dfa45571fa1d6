"""docs/grafana-dashboard.json queries only what GET /metrics serves: every
metric name in its PromQL, and every label value it matches on."""

import json
import re

import pytest
from django.test import Client as HttpClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.paths import ROOT

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
METRIC = re.compile(r"\b(webhook_[a-z_]+)\b(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def served() -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> the values served."""
    response = HttpClient().get("/metrics", HTTP_AUTHORIZATION="Bearer dash-token")
    assert response.status_code == 200
    samples: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            labels = samples.setdefault(sample.name, {})
            for name, value in sample.labels.items():
                labels.setdefault(name, set()).add(value)
    return samples


@pytest.mark.django_db
def test_every_metric_and_label_the_dashboard_queries_is_served(settings):
    settings.WEBHOOK_METRICS_TOKEN = "dash-token"
    queries = dashboard_queries()
    samples = served()

    queried = set()
    for query in queries:
        grouped_by = {
            label.strip()
            for labels in re.findall(r"\bby \(([^)]*)\)", query)
            for label in labels.split(",")
        }
        for name, matchers in METRIC.findall(query):
            queried.add(name)
            assert name in samples, f"{name} (in {query!r}) is not on /metrics"
            labels = samples[name]
            # "le" is every histogram bucket's; the others must be this metric's.
            assert grouped_by - {"le"} <= set(labels), (name, grouped_by)
            for label, operator, pattern in MATCHER.findall(matchers):
                wanted = [pattern] if operator in ("=", "!=") else pattern.split("|")
                assert set(wanted) <= labels.get(label, set()), (name, label, wanted)

    # What docs/operations.md says the dashboard shows.
    assert {
        "webhook_attempts_total",
        "webhook_attempt_duration_seconds_bucket",
        "webhook_deliveries_due",
        "webhook_deliveries_finished_total",
        "webhook_events_published_total",
    } <= queried
    quantiles = {
        float(q)
        for query in queries
        for q in re.findall(r"histogram_quantile\(([\d.]+)", query)
    }
    assert quantiles == {0.5, 0.95, 0.99}


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_source():
    dashboard = json.loads(DASHBOARD.read_text())

    assert dashboard["title"] and dashboard["uid"]
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
