"""`make run` on a fresh machine: with no DATABASE_URL and no REDIS_URL the
Procfile's web, worker and beat run on SQLite and the filesystem broker, and
the README's first delivery works end to end."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.paths import BIN, ROOT
from tests.support.ports import free_port
from tests.support.receiver import Receiver

pytestmark = pytest.mark.integration


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


@pytest.fixture
def embedded_env(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        WEBHOOK_VAR_DIR=str(tmp_path / "var"),  # a fresh clone has no var/
        WEBHOOK_ALLOW_PRIVATE_DESTINATIONS="true",  # as make run sets it
        WEBHOOK_DISPATCH_INTERVAL="200ms",
        PORT=str(free_port()),
        DEBUG="true",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def call(env, method: str, path: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{env['PORT']}{path}",
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for_web(env, processes) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/health", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the web process did not answer /health in 30 s")


def test_the_procfile_delivers_an_event_on_embedded_defaults(embedded_env, tmp_path):
    env = embedded_env
    manage(env, "migrate", "--noinput")
    customer = manage(env, "create_api_key", "--client", "acme").splitlines()[-1]
    platform = manage(
        env, "create_api_key", "--client", "platform", "--scope", "publish"
    ).splitlines()[-1]

    commands = procfile()
    processes = {
        name: subprocess.Popen(
            ["bash", "-c", commands[name].replace("0.0.0.0:", "127.0.0.1:")],
            cwd=ROOT,
            env=env,
            stdout=(tmp_path / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name in ("web", "worker", "beat")
    }
    try:
        with Receiver() as receiver:
            wait_for_web(env, processes)
            webhook = call(
                env,
                "POST",
                "/api/v1/webhooks",
                customer,
                {
                    "event_groups": ["DELIVERED"],
                    "configuration": {"url": receiver.url("/hooks")},
                },
            )
            published = call(
                env,
                "POST",
                "/api/v1/events",
                platform,
                {"type": "DELIVERED", "tenant": "acme", "payload": {"n": 1}},
            )
            assert published["deliveries"] == 1

            (request,) = receiver.wait_for(1, timeout=30)
            event = Webhook(webhook["secret"]).verify(request.body, request.headers)
            assert event["id"] == published["id"]
            for name, process in processes.items():
                assert process.poll() is None, f"{name} stopped"
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
