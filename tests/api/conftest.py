import pytest

from tests.api.support import new_body


@pytest.fixture
def body() -> dict:
    """A fresh copy of API.md's create body (with recognisable secrets)."""
    return new_body()
