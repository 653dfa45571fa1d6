import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.paths import ROOT
from tests.support.waiting import wait_until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def run_receiver(tmp_path):
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_receiver",
                "--port",
                "0",
                "--secret",
                SECRET,
                "--status",
                "202",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            line = wait_until(
                lambda: "Receiving webhooks on" in log.read_text() and log.read_text(),
                timeout=30,
                message="the receiver to start",
            )
            port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
            yield port, log
        finally:
            process.terminate()
            process.wait(timeout=10)


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hooks", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


@pytest.mark.integration
def test_it_prints_requests_and_checks_their_signature(run_receiver):
    port, log = run_receiver
    body = json.dumps({"id": "evt_1", "type": "DELIVERED"})
    now = datetime.now(tz=UTC)
    signed = {
        "Content-Type": "application/json",
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("evt_1", now, body),
    }
    assert post(port, body.encode(), signed) == 202
    forged = {**signed, "webhook-signature": "v1,AAAA"}
    assert post(port, body.encode(), forged) == 202

    output = wait_until(
        lambda: log.read_text().count("signature:") >= 2 and log.read_text(),
        timeout=10,
        message="two printed requests",
    )
    assert "POST /hooks" in output
    assert '"type": "DELIVERED"' in output
    assert "signature: valid" in output
    assert "signature: INVALID" in output
