import pytest
from django.test import Client

from enque import health


def test_healthz_answers_without_touching_the_database(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_every_component_up(client: Client) -> None:
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["components"]) == {"database", "cache", "channel_layer", "broker"}
    assert all(c["status"] == "up" for c in body["components"].values())


@pytest.mark.django_db
def test_readyz_names_the_component_that_is_down(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_cache() -> str:
        raise ConnectionError("connection refused")

    monkeypatch.setitem(health.CHECKS, "cache", broken_cache)

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["components"]["cache"]["status"] == "down"
    assert "connection refused" in body["components"]["cache"]["error"]
    assert body["components"]["database"]["status"] == "up"


def test_readyz_refuses_post(client: Client) -> None:
    assert client.post("/readyz").status_code == 405
