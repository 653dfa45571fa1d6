"""`.env.example` lists every variable the settings and the Procfile read."""

import re

from tests.support.paths import ROOT

READS = re.compile(
    r"""(?:conf\.read\(\s*E,\s*|env\.\w+\(\s*|environ\.get\(\s*|E\.get\(\s*)"([A-Z][A-Z0-9_]+)\""""
)


def _listed() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_variable_the_settings_read_is_in_env_example():
    read = set()
    for module in (ROOT / "webhooks_project").glob("*.py"):
        read |= set(READS.findall(module.read_text()))

    assert {"DATABASE_URL", "REDIS_URL", "WEBHOOK_BATCH_SIZE"} <= read
    assert read - _listed() == set()


def test_every_variable_the_procfile_reads_is_in_env_example():
    procfile = (ROOT / "Procfile").read_text()
    read = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", procfile))

    assert {"PORT", "WEB_CONCURRENCY", "WORKER_CONCURRENCY"} <= read
    assert read - _listed() == set()
