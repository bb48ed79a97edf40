"""/metrics: the bearer token and networks, the Prometheus text format, what it counts and what
it reads at scrape time, and labels of low cardinality.

Counters are process-wide, so each test compares a scrape after its requests with one before.
Two processes counted together (real Celery workers): tests/queue/test_metrics_workers.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings as SettingsWrapper

from campaigns.tracking import buffer, links
from penguinmails import indexes
from penguinmails.metrics.db import timed_execute
from penguinmails.queue import live
from penguinmails.queue.producer import enqueue
from tests.conftest import Cast, host_of
from tests.tracking.conftest import call

TOKEN = "s3cret-scrape-token"
# Every label name a metric of ours may carry (`le` is a histogram bucket's bound).
ALLOWED_LABELS = {
    "view", "method", "status", "statement", "task", "outcome", "kind", "queue", "state",
    "event", "collector", "le",
}  # fmt: skip

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def token(settings: SettingsWrapper) -> str:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    return TOKEN


def scrape_text(host: str = "localhost") -> str:
    response = Client().get("/metrics", HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def scrape(host: str = "localhost") -> Samples:
    return parse(scrape_text(host))


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


# --- who may read it ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_is_not_served_while_no_token_is_configured(settings: SettingsWrapper) -> None:
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404


@pytest.mark.django_db
def test_it_asks_for_a_bearer_token(token: str) -> None:
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"penguinmails_" not in response.content
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 401


@pytest.mark.django_db
def test_it_refuses_a_wrong_token(token: str) -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}x")
    assert response.status_code == 403
    assert b"penguinmails_" not in response.content


@pytest.mark.django_db
def test_it_refuses_a_right_token_from_outside_the_allowed_networks(
    token: str, settings: SettingsWrapper
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]
    for address, status in [("192.0.2.10", 403), ("10.1.2.3", 200), ("2001:db8::5", 200)]:
        client = Client(REMOTE_ADDR=address, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert client.get("/metrics").status_code == status


def test_it_refuses_to_start_with_a_malformed_network(settings: SettingsWrapper) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-network"]
    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOWED_NETWORKS"):
        Client().get("/metrics")


@pytest.mark.django_db(transaction=True)
def test_a_query_wrapper_of_others_comes_off_even_when_the_connection_is_made_inside_it() -> None:
    def blocker(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        raise AssertionError("no queries here")

    connection.execute_wrappers.remove(timed_execute)  # as on a wrapper that never connected
    with connection.execute_wrapper(blocker):
        connection.close()
        connection.ensure_connection()  # connection_created: the timer joins, under theirs
    assert connection.execute_wrappers == [timed_execute]


@pytest.mark.django_db
def test_it_answers_before_tenant_lookup_on_any_host(token: str, cast: Cast) -> None:
    # A tenant's host and a host no tenant has: answered, never routed to a tenant.
    assert "penguinmails_http_requests_total" in scrape_text(host_of(cast.tenant))
    assert "penguinmails_http_requests_total" in scrape_text("nobody.localhost")


# --- what it counts ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_counts_requests_by_route_name_never_by_path(token: str, cast: Cast) -> None:
    before = scrape()
    client = Client()
    for _ in range(3):
        client.get("/health/db")
    # A path carrying an id: counted under its route's name, the id nowhere.
    client.get("/campaigns/987654/", HTTP_HOST=host_of(cast.tenant))
    client.get("/no/such/page/55555/", HTTP_HOST=host_of(cast.tenant))
    text = scrape_text()
    after = parse(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("penguinmails_http_requests_total", view="health", status="2xx") == 3
    assert delta("penguinmails_http_request_duration_seconds_count", view="health") == 3
    assert delta("penguinmails_http_requests_total", view="<unmatched>", status="4xx") == 1
    assert (
        delta("penguinmails_http_requests_total", view="campaigns:campaign_detail", method="GET")
        == 1
    )
    assert "987654" not in text and "55555" not in text
    # Every statement of those requests (and this scrape's) is timed.
    assert delta("penguinmails_db_query_duration_seconds_count", statement="select") > 0


@pytest.mark.django_db
def test_it_counts_5xx_answers_as_errors_of_their_view(token: str) -> None:
    before = scrape()
    Client().get("/health/queue")  # no beat heartbeat in this Redis database: 503
    after = scrape()
    assert (
        value(after, "penguinmails_http_request_errors_total", view="health")
        - value(before, "penguinmails_http_request_errors_total", view="health")
        == 1
    )


@pytest.mark.django_db
def test_it_counts_tracking_events_by_kind(token: str, cast: Cast) -> None:
    before = scrape()
    try:
        for _ in range(2):
            call("GET", links.open_url("https://track.customer.test", cast.tenant.pk, 424242))
    finally:
        live.client().delete(buffer.EVENTS_KEY)
    after = scrape()
    assert (
        value(after, "penguinmails_tracking_events_total", kind="o")
        - value(before, "penguinmails_tracking_events_total", kind="o")
        == 2
    )


# --- what it reads at scrape time --------------------------------------------------------------
@pytest.mark.django_db
def test_it_reports_queue_depth_and_age_by_priority(token: str) -> None:
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    for _ in range(3):
        enqueue("platform.noop", priority=120, run_at=an_hour_ago)
    enqueue("platform.noop", priority=200)
    enqueue("platform.noop", priority=200, run_at=timezone.now() + dt.timedelta(hours=1))
    samples = scrape()
    assert value(samples, "penguinmails_queue_ready_jobs", queue="default") == 3
    assert value(samples, "penguinmails_queue_ready_jobs", queue="low") == 1  # not the later one
    assert value(samples, "penguinmails_queue_ready_jobs", queue="high") == 0
    assert value(samples, "penguinmails_queue_oldest_waiting_age_seconds", queue="default") >= 3600
    assert value(samples, "penguinmails_queue_oldest_waiting_age_seconds", queue="high") == 0
    assert value(samples, "penguinmails_scrape_error", collector="queue") == 0
    assert value(samples, "penguinmails_scrape_error", collector="broker") == 0
    assert ("penguinmails_queue_broker_messages", frozenset({("queue", "high")})) in samples


@pytest.mark.django_db
def test_it_reports_sends_bounces_complaints_and_replies_from_the_platform_counts(
    token: str,
) -> None:
    before = scrape()
    today = timezone.now().date()
    indexes.bump_platform_daily(today, sent=40, bounced=3, complained=1, replied=5)
    indexes.bump_platform_daily(today - dt.timedelta(days=1), sent=10, replied=1)
    after = scrape()
    for event, added in {"sent": 50, "bounced": 3, "complained": 1, "replied": 6}.items():
        name = "penguinmails_messages_total"
        assert value(after, name, event=event) - value(before, name, event=event) == added


@pytest.mark.django_db
def test_it_reports_database_connections(token: str) -> None:
    samples = scrape()
    # This test's own connection is active while it asks.
    assert value(samples, "penguinmails_db_connections", state="active") >= 1
    assert value(samples, "penguinmails_db_max_connections") > 0


@pytest.mark.django_db
def test_it_still_answers_when_redis_is_down_and_says_which_collector_failed(
    token: str, settings: SettingsWrapper
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    samples = scrape()
    assert value(samples, "penguinmails_scrape_error", collector="broker") == 1
    assert value(samples, "penguinmails_scrape_error", collector="queue") == 0


@pytest.mark.django_db
def test_it_has_no_per_tenant_lead_or_message_labels(token: str, cast: Cast) -> None:
    Client().get("/health/db")
    Client().get("/campaigns/31337/", HTTP_HOST=host_of(cast.tenant))
    text = scrape_text()
    families = list(text_string_to_metric_families(text))
    assert {f.name for f in families} >= {
        "penguinmails_http_requests", "penguinmails_http_request_duration_seconds",
        "penguinmails_db_query_duration_seconds", "penguinmails_db_connections",
        "penguinmails_queue_ready_jobs", "penguinmails_queue_oldest_waiting_age_seconds",
        "penguinmails_messages",
    }  # fmt: skip
    names = {name for f in families for s in f.samples for name in s.labels}
    assert names <= ALLOWED_LABELS
    assert cast.tenant.schema_name not in text and "31337" not in text
