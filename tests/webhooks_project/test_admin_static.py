"""With DEBUG=false the admin's stylesheets are served (by whitenoise, from
collectstatic's output) by the same gunicorn that serves the app."""

import os
import re
import subprocess
import sys
import time

import pytest
import requests

from tests.support.paths import BIN, ROOT
from tests.support.ports import free_port
from tests.support.stack import database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def production_web():
    env = {
        **os.environ,
        "DEBUG": "false",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "static-files-test",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
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
