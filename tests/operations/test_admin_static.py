"""With DEBUG=false the admin's stylesheets are served (by whitenoise, from
collectstatic's output) by the same gunicorn that serves the app."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database, so the app sees what the test sees."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def production_web():
    env = {
        **os.environ,
        "DEBUG": "false",
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": "static-files-test",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    port = _free_port()
    web = subprocess.Popen(
        [BIN / "gunicorn", "webhooks_project.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(f"{base}/admin/login/", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert web.poll() is None, web.stderr.read().decode()
                time.sleep(0.1)
        yield base
    finally:
        web.terminate()
        web.wait(timeout=10)


def test_the_admin_login_page_and_its_css_are_served_without_debug(production_web):
    login = requests.get(f"{production_web}/admin/login/", timeout=5)

    assert login.status_code == 200
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+\.css)"', login.text)
    assert "/static/admin/css/base.css" in stylesheets
    for href in stylesheets:
        css = requests.get(f"{production_web}{href}", timeout=5)
        assert css.status_code == 200, href
        assert css.headers["Content-Type"].startswith("text/css")
        assert len(css.content) > 100


def test_an_unknown_static_file_is_a_404_not_a_page(production_web):
    response = requests.get(f"{production_web}/static/admin/css/nope.css", timeout=5)

    assert response.status_code == 404
