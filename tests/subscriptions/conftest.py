import pytest

from tests.support.api import new_body


@pytest.fixture
def body() -> dict:
    """A fresh copy of docs/api.md's create body (with recognisable secrets)."""
    return new_body()
