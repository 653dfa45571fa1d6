# Fixtures shared with the delivery suite: subscribe(url, **fields) and a
# real local HTTP receiver.
from tests.delivery.conftest import subscribe  # noqa: F401 - a fixture
from tests.integration.fixtures import receiver  # noqa: F401 - a fixture
