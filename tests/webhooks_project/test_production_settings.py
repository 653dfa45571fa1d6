"""With DEBUG off, every process refuses to start without SECRET_KEY (or with
its development default), WEBHOOK_ENCRYPTION_KEYS or ALLOWED_HOSTS, naming
the variable (docs/deploy.md, "Production settings")."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support.paths import BIN, ROOT
from tests.support.ports import free_port
from webhooks_project import conf

pytestmark = pytest.mark.integration

CONFIGURED = {
    "SECRET_KEY": "a-real-production-secret-key-0123456789",
    "WEBHOOK_ENCRYPTION_KEYS": "zy-KseUOiWJkDFKZFueJanteiape3QS4se_XWq8OZ-M=",
    "ALLOWED_HOSTS": "hooks.example.com",
}

# The Procfile's four process types, as a deployment starts them.
PROCESSES = {
    "release": lambda tmp: [sys.executable, "manage.py", "migrate", "--noinput"],
    "web": lambda tmp: [
        str(BIN / "gunicorn"),
        "webhooks_project.wsgi",
        "--bind",
        f"127.0.0.1:{free_port()}",
    ],
    "worker": lambda tmp: [
        str(BIN / "celery"),
        "-A",
        "webhooks_project",
        "worker",
        "--pool",
        "threads",
    ],
    "beat": lambda tmp: [
        str(BIN / "celery"),
        "-A",
        "webhooks_project",
        "beat",
        "--schedule",
        str(tmp / "celerybeat-schedule"),
    ],
}

# (case, what changes from CONFIGURED, the variable the output must name)
MISCONFIGURED = [
    ("no-secret-key", {"SECRET_KEY": None}, "SECRET_KEY"),
    ("default-secret-key", {"SECRET_KEY": conf.DEV_SECRET_KEY}, "SECRET_KEY"),
    (
        "no-encryption-keys",
        {"WEBHOOK_ENCRYPTION_KEYS": None},
        "WEBHOOK_ENCRYPTION_KEYS",
    ),
    ("empty-allowed-hosts", {"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
]


def production_env(tmp_path, changes: dict[str, str | None]) -> dict[str, str]:
    # Built from nothing: the test process's own test secrets must not leak in.
    env = {
        key: os.environ[key] for key in ("HOME", "LANG", "PATH") if key in os.environ
    }
    env.update(
        DEBUG="false",
        DJANGO_SETTINGS_MODULE="webhooks_project.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="memory://",
        WEBHOOK_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
        **CONFIGURED,
    )
    for name, value in changes.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    return env


@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize(
    ("changes", "variable"),
    [pytest.param(c, v, id=name) for name, c, v in MISCONFIGURED],
)
def test_a_process_refuses_to_start_naming_the_missing_variable(
    tmp_path, process, changes, variable
):
    try:
        done = subprocess.run(
            PROCESSES[process](tmp_path),
            cwd=ROOT,
            env=production_env(tmp_path, changes),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{process} started: {exc.stderr!r}")

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    (line,) = [x for x in output.splitlines() if "ImproperlyConfigured:" in x][-1:]
    assert variable in line
    assert "DEBUG is off" in line


def test_a_configured_deployment_passes_the_checks(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=production_env(tmp_path, {}),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"secret_key": ""}, ["SECRET_KEY"]),
        ({"encryption_keys": [" "]}, ["WEBHOOK_ENCRYPTION_KEYS"]),
        ({"allowed_hosts": []}, ["ALLOWED_HOSTS"]),
        (
            {"secret_key": conf.DEV_SECRET_KEY, "allowed_hosts": [""]},
            ["SECRET_KEY", "ALLOWED_HOSTS"],
        ),
    ],
)
def test_the_problem_names_every_missing_variable_in_one_line(given, named):
    configured = {
        "secret_key": CONFIGURED["SECRET_KEY"],
        "encryption_keys": [CONFIGURED["WEBHOOK_ENCRYPTION_KEYS"]],
        "allowed_hosts": ["hooks.example.com"],
    }
    problem = conf.production_problem(**{**configured, **given})

    assert problem is not None and "\n" not in problem
    assert all(name in problem for name in named)
    assert conf.production_problem(**configured) is None


def test_the_error_is_improperly_configured():
    assert issubclass(conf.ImproperlyConfigured, ImproperlyConfigured)
