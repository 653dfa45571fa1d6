"""A private virtual host on the machine's RabbitMQ (127.0.0.1:5672,
guest/guest), for tests that run the service with CELERY_BROKER_URL=amqp://…
(docs/deploy.md, "RabbitMQ"). `rabbitmqctl` talks to the broker as its Erlang
node, which needs root (or the rabbitmq user); a vhost costs a few seconds of
rabbitmqctl, so the fixture makes one per session.

    vhost = RabbitVhost()
    vhost.url()      # amqp://guest:guest@127.0.0.1:5672/webhooks-test-…
    vhost.close()    # deleted, with its queues and messages
"""

import os
import shutil
import subprocess
import uuid

RABBITMQCTL = shutil.which("rabbitmqctl") or shutil.which(
    "rabbitmqctl", path="/usr/sbin:/sbin"
)
HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1:5672")


class RabbitVhost:
    def __init__(self) -> None:
        if RABBITMQCTL is None:
            raise RuntimeError(
                "rabbitmqctl is missing: apt-get install rabbitmq-server"
            )
        self.name = f"webhooks-test-{uuid.uuid4().hex[:8]}"
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")

    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}/{self.name}"

    def close(self) -> None:
        self._ctl("delete_vhost", self.name)

    def _ctl(self, *args: str) -> None:
        done = subprocess.run(
            [RABBITMQCTL, *args], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} failed (run the tests as root, "
                f"RabbitMQ on {HOST}):\n{done.stdout}{done.stderr}"
            )
