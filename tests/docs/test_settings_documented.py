"""Every WEBHOOK_* setting the service reads is documented: an operator
finds each knob in docs/ or the README, with its default."""

import re

from tests.support.paths import ROOT

READ = re.compile(r'"(WEBHOOK_[A-Z0-9_]+)"')


def test_every_webhook_setting_is_in_the_docs():
    settings = set(
        READ.findall((ROOT / "webhooks_project" / "settings.py").read_text())
    )
    assert len(settings) > 20  # the pattern still finds them
    docs = "\n".join(
        path.read_text() for path in [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    )
    assert sorted(name for name in settings if f"`{name}`" not in docs) == []
