"""PostgreSQL connections give up on a lost host or link (DB_NETWORK_TIMEOUT):
libpq's connect timeout, TCP user timeout and keepalives, unless
DATABASE_URL sets them. tests/multihost cuts real links against them."""

import json
import os
import subprocess
import sys

from tests.support.paths import ROOT

SHOW_OPTIONS = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
)


def _options(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SHOW_OPTIONS],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "webhooks_project.settings",
            "DATABASE_URL": "postgres://postgres@db.internal:5432/webhooks",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_connections_give_up_after_the_network_timeout():
    done = _options(DB_NETWORK_TIMEOUT="4s")

    assert json.loads(done.stdout) == {
        "connect_timeout": 4,
        "tcp_user_timeout": 4000,
        "keepalives": 1,
        "keepalives_idle": 2,
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }


def test_the_default_is_five_seconds_and_the_url_wins():
    done = _options(
        DATABASE_URL="postgres://postgres@db.internal:5432/webhooks?connect_timeout=3"
    )

    options = json.loads(done.stdout)
    assert options["connect_timeout"] == 3
    assert options["tcp_user_timeout"] == 5000


def test_a_timeout_that_is_not_a_positive_duration_stops_start_up():
    done = _options(DB_NETWORK_TIMEOUT="0s")

    assert done.returncode != 0
    assert "DB_NETWORK_TIMEOUT='0s'" in done.stderr
