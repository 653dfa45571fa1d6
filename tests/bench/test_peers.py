"""The peer (django-webhook) runs on the Procfile's web line, less what is the
service's own."""

from bench.peers import _commands
from bench.stack import procfile_commands


def test_the_peer_web_line_is_the_procfiles_without_the_services_gunicorn_hooks():
    procfile_web = procfile_commands()["web"]
    assert "python:webhooks_project.gunicorn_conf" in procfile_web

    web = _commands("peerapp.wsgi")["web"]

    # The hooks import prometheus_client, which the peer's venv has not.
    assert "webhooks_project" not in web
    # (Its connections keep the Procfile's name, PGAPPNAME=webhooks-web: the
    # ceiling, on the same line, is parted by it.)
    assert web.startswith("PGAPPNAME=webhooks-web gunicorn peerapp.wsgi ")
    assert "--threads ${WEB_THREADS:-8}" in web
