"""`manage.py check --deploy --fail-level WARNING` (the Procfile's release
phase) passes on the production configuration docs/deploy.md documents, and
stops a deployment that lacks one of its pieces, naming it. The HTTPS
defaults stay out of the way of plain-http use (tests, the benchmark)."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from tests.support.paths import ROOT
from webhooks_project import conf

_MARKER = "<!-- production-env:"


def documented_production_env() -> dict[str, str]:
    """The KEY=value lines of docs/deploy.md's production block."""
    text = (ROOT / "docs/deploy.md").read_text()
    block = re.search(re.escape(_MARKER) + r".*?\n```\w*\n(.*?)\n```", text, re.S)
    assert block, "docs/deploy.md lost its production-env block"
    pairs = re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", block.group(1), re.M)
    return dict(pairs)


def _run_check(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        key: os.environ[key] for key in ("HOME", "LANG", "PATH") if key in os.environ
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **base,
            **env,
            "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
            "WEBHOOK_VAR_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    env = documented_production_env()
    # The placeholders ("…") filled in; the stores are not reached by check.
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        WEBHOOK_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL="",
        CELERY_BROKER_URL="memory://",
    )
    return env


def test_the_documented_block_is_a_production_configuration():
    env = documented_production_env()

    assert env["DEBUG"] == "false"
    assert env["SECURE_SSL_REDIRECT"] == "true"
    assert env["SECURE_PROXY_SSL_HEADER"] == "X-Forwarded-Proto,https"
    assert env["WEBHOOK_ALLOW_PRIVATE_DESTINATIONS"] == "false"


def test_the_documented_production_configuration_passes_the_deploy_checks(
    tmp_path, production_env
):
    done = _run_check(tmp_path, production_env)

    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize(
    ("change", "warning"),
    [
        ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, "security.W005"),
        ({"SESSION_COOKIE_SECURE": "false"}, "security.W012"),
        ({"CSRF_COOKIE_SECURE": "false"}, "security.W016"),
        ({"SECRET_KEY": "short-and-weak"}, "security.W009"),
    ],
    ids=["no-ssl-redirect", "no-hsts", "hsts-no-subdomains", "session", "csrf", "key"],
)
def test_a_missing_piece_fails_the_check_naming_it(
    tmp_path, production_env, change, warning
):
    done = _run_check(tmp_path, {**production_env, **change})

    assert done.returncode != 0
    assert warning in done.stderr


def test_the_release_phase_checks_before_it_migrates():
    procfile = (ROOT / "Procfile").read_text()
    (release,) = [line for line in procfile.splitlines() if line.startswith("release:")]

    check = release.index("manage.py check --deploy --fail-level WARNING &&")
    assert check < release.index("manage.py migrate")


def test_with_debug_on_nothing_is_forced_to_https(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
            "WEBHOOK_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False", "0", "False", "None"]


def test_with_debug_off_plain_http_calls_are_answered_not_redirected(db, settings):
    # The tests and the benchmark run DEBUG off over plain http.
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    assert not settings.SECURE_SSL_REDIRECT

    response = Client().get("/health")

    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_is_sent_on_https_responses(db, settings):
    response = Client().get("/health", secure=True)

    assert response.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )


def test_with_the_redirect_on_probes_are_still_answered_over_plain_http(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    api = Client().get("/api/v1/webhooks")
    health = Client().get("/health")
    metrics = Client().get("/metrics")
    behind_proxy = Client().get("/api/v1/webhooks", HTTP_X_FORWARDED_PROTO="https")

    assert api.status_code == 301
    assert api.headers["Location"].startswith("https://")
    assert health.status_code == 200
    assert metrics.status_code != 301
    assert behind_proxy.status_code == 401


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("X-Forwarded-Proto,https", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("HTTP_X_FORWARDED_PROTO, https", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("x-forwarded-ssl,on", ("HTTP_X_FORWARDED_SSL", "on")),
    ],
)
def test_it_parses_the_proxy_ssl_header(text, expected):
    assert conf.parse_proxy_ssl_header(text) == expected


@pytest.mark.parametrize("text", ["X-Forwarded-Proto", "X-Forwarded-Proto,", ",https"])
def test_it_rejects_a_proxy_ssl_header_without_its_value(text):
    with pytest.raises(ValueError):
        conf.parse_proxy_ssl_header(text)
