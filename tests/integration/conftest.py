from tests.integration.fixtures import *  # noqa: F403
