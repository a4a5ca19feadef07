"""Production settings: `check --deploy` is clean, and the headers say what settings mean.

The settings module is read once per process, so each production configuration is loaded
in a subprocess; the headers are checked in-process with the settings overridden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from enque import config

ROOT = Path(__file__).resolve().parents[2]

# What a production deployment sets (.env.example); services are named but never reached.
PRODUCTION = {
    "ENVIRONMENT": "production",
    # Generated as a deployment generates them (.env.example): long and random.
    **{name: generate() for name, generate in config.GENERATED_SECRETS.items()},
    "ALLOWED_HOSTS": "help.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://help.example.com",
    "DATABASE_URL": "postgres://enque:secret@db.internal:5432/enque",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "enque-files",
    "AWS_S3_ENDPOINT_URL": "https://account.r2.cloudflarestorage.com",
}
# Variables of this machine's environment that would change what is being tested.
_OVERRIDDEN = {*PRODUCTION, "DEBUG", "TEST_DATABASE_NAME", "LOG_FORMAT", "SENTRY_DSN"}


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _OVERRIDDEN and not key.startswith(("SECURE_", "AWS_", "SENTRY_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="enque.settings", ENQUE_VAR_DIR=str(tmp_path))
    env.update(PRODUCTION)
    env.update(overrides)
    return env


def run(tmp_path: Path, args: list[str], **overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=production_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_settings(tmp_path: Path, *names: str, **overrides: str) -> dict[str, Any]:
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}, "
        "default=str))"
    )
    result = run(tmp_path, ["-c", script], **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_in_production(tmp_path: Path) -> None:
    result = run(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_defaults_are_the_secure_ones(tmp_path: Path) -> None:
    values = production_settings(
        tmp_path,
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SECURE",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_PROXY_SSL_HEADER",
        "X_FRAME_OPTIONS",
        "SECURE_REFERRER_POLICY",
        "LOG_FORMAT",
    )

    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "CSRF_TRUSTED_ORIGINS": ["https://help.example.com"],
        # Not trusted unless a proxy is declared.
        "SECURE_PROXY_SSL_HEADER": None,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_REFERRER_POLICY": "same-origin",
        "LOG_FORMAT": "json",
    }


def test_each_security_setting_comes_from_the_environment(tmp_path: Path) -> None:
    values = production_settings(
        tmp_path,
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_HSTS_PRELOAD="false",
        USE_X_FORWARDED_PROTO="true",
    )

    assert values == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_the_csp_lets_images_come_from_the_storage_endpoint(tmp_path: Path) -> None:
    values = production_settings(tmp_path, "CONTENT_SECURITY_POLICY")

    directives = values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert "https://account.r2.cloudflarestorage.com" in directives["img-src"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_development_keeps_plain_http(tmp_path: Path) -> None:
    values = production_settings(
        tmp_path,
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "LOG_FORMAT",
        ENVIRONMENT="development",
    )

    assert values == {"SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0, "LOG_FORMAT": "plain"}


# --- The headers, in-process ------------------------------------------------------------


@pytest.fixture
def production_headers(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


@pytest.mark.django_db
@pytest.mark.usefixtures("production_headers")
def test_plain_http_is_redirected_to_https_except_the_probes() -> None:
    client = Client()

    assert client.get("/admin/login/").status_code == 301
    assert client.get("/admin/login/")["Location"] == "https://testserver/admin/login/"
    # Load balancers and the container health check call the probes over plain HTTP.
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("production_headers")
def test_https_responses_carry_hsts_and_the_other_security_headers() -> None:
    response = Client().get("/admin/login/", secure=True)

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def csp(response: Any) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


@pytest.mark.django_db
def test_ui_pages_get_a_strict_content_security_policy() -> None:
    policy = csp(Client().get("/admin/login/"))

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script without the nonce
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]


@pytest.mark.django_db
def test_the_policy_names_the_nonce_a_page_used(rf: Any) -> None:
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse

    request = rf.get("/")
    middleware = CSPMiddleware(lambda request: HttpResponse())
    middleware.process_request(request)
    nonce = str(request.csp_nonce)  # a template rendering <script nonce="...">
    response = middleware.process_response(request, HttpResponse())

    assert f"'nonce-{nonce}'" in csp(response)["script-src"]


@pytest.mark.django_db
def test_the_api_docs_may_load_their_cdn_and_nothing_else_widens() -> None:
    policy = csp(Client().get("/v1/docs"))

    assert "https://cdn.jsdelivr.net" in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "https://cdn.jsdelivr.net" not in csp(Client().get("/admin/login/"))["script-src"]


def test_postgresql_connections_come_from_a_pool_per_process(tmp_path: Path) -> None:
    # Under ASGI, Django's persistent connections are kept per thread and pile up; a pool
    # bounds them (Django's docs: disable persistent connections under ASGI).
    values = production_settings(tmp_path, "DATABASES")

    database = values["DATABASES"]["default"]
    assert database["CONN_MAX_AGE"] == 0
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 10, "timeout": 10}
    assert database["CONN_HEALTH_CHECKS"] is True


def test_without_the_pool_persistent_connections_apply(tmp_path: Path) -> None:
    values = production_settings(tmp_path, "DATABASES", DB_POOL_MAX_SIZE="0", DB_CONN_MAX_AGE="0")

    database = values["DATABASES"]["default"]
    assert database["CONN_MAX_AGE"] == 0
    assert "pool" not in database.get("OPTIONS", {})
