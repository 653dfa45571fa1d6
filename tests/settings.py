"""The test process's settings: production mode (DEBUG off, as deployed),
configured with fixed, public test secrets, since webhooks_project.settings
refuses to start in production mode without them.

They are put in the environment (not only in these settings) so that the
service processes tests start (tests/support/stack.py, subprocess tests)
inherit the same configuration and can decrypt what this process encrypted.
A variable already set in the environment wins.
"""

import os

TEST_ENVIRONMENT = {
    "SECRET_KEY": "tests-only-not-a-secret-0123456789abcdef",
    "WEBHOOK_ENCRYPTION_KEYS": "zy-KseUOiWJkDFKZFueJanteiape3QS4se_XWq8OZ-M=",
    "ALLOWED_HOSTS": "*",
}
for _name, _value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

from webhooks_project.settings import *  # noqa: E402, F403
