"""scripts/screenshots.py takes the admin screenshots and checks each page;
it fails when a page is wrong."""

import os
import struct
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from psycopg2 import sql

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import screenshots  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def throwaway_database_url():
    """A database of its own, dropped afterwards."""
    base = urlsplit(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/webhooks")
    )
    name = f"{base.path.lstrip('/')}_screenshots_test"
    yield urlunsplit(base._replace(path=f"/{name}"))
    connection = psycopg2.connect(urlunsplit(base._replace(path="/postgres")))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
    connection.close()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_the_script_writes_checked_screenshots_of_admin_and_portal(
    tmp_path, throwaway_database_url
):
    result = subprocess.run(
        [sys.executable, "scripts/screenshots.py", str(tmp_path), "--fresh"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": throwaway_database_url},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "FAIL" not in result.stderr
    for name in (
        "subscriptions",
        "delivery",
        "dashboard",
        "portal-webhooks",
        "portal-webhook",
        "portal-create",
        "portal-events",
        "portal-event-types",
        "portal-refused",
    ):
        png = tmp_path / f"{name}.png"
        width, height = _png_size(png)
        assert (width, height >= 800) == (1600, True), name
        # Not blank: a rendered page (the refused one is a short page).
        assert png.stat().st_size > (10_000 if name == "portal-refused" else 30_000)
    # The portal on a phone: one column, as wide as the screen.
    width, height = _png_size(tmp_path / "portal-webhooks-phone.png")
    assert (width, height >= 800) == (390, True)


class _Page:
    """What the checks read of a browser page."""

    def __init__(self, html: str, text: str, header: dict | None) -> None:
        self.html, self.text, self.header = html, text, header

    def content(self) -> str:
        return self.html

    def inner_text(self, selector: str) -> str:
        return self.text

    def evaluate(self, script: str, arg: object = None) -> dict | None:
        return self.header


STYLED = {"background": "rgb(65, 118, 144)", "display": "flex"}
SHOT = screenshots.Shot("x", "/admin/", ["Deliveries"])
SAMPLE = screenshots.Sample("operator", "pw", "id", ["whsec_topsecret"])


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        pytest.param(_Page("<p>ok</p>", "DELIVERIES", STYLED), None, id="a good page"),
        pytest.param(
            _Page("<p>ok</p>", "Events", STYLED), "is not on the page", id="missing"
        ),
        pytest.param(
            _Page("<p>whsec_topsecret</p>", "Deliveries", STYLED),
            "a secret is in the HTML",
            id="a secret",
        ),
        pytest.param(
            _Page(
                "", "Deliveries", {"background": "rgba(0, 0, 0, 0)", "display": "block"}
            ),
            "stylesheet is not applied",
            id="unstyled",
        ),
        pytest.param(_Page("", "Deliveries", None), "no #header", id="no header"),
    ],
)
def test_the_checks_catch_a_wrong_page(page, problem):
    problems = screenshots._check(page, SHOT, SAMPLE)

    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


class _PortalPage(_Page):
    """A styled page whose accessibility check finds `problems`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("<p>ok</p>", "Deliveries", STYLED)
        self.problems = problems

    def evaluate(self, script: str, arg: object = None) -> dict | list | None:
        return self.header if arg is not None else self.problems


def test_the_portals_pages_are_checked_for_landmarks_and_labels():
    shot = screenshots.Shot("p", "/portal/", ["Deliveries"], accessible=True)

    assert screenshots._check(_PortalPage([]), shot, SAMPLE) == []
    assert screenshots._check(
        _PortalPage(["an input without a label (url)"]), shot, SAMPLE
    ) == ["an input without a label (url)"]
