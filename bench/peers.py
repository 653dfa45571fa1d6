"""What single-event publishing is compared with, in the same run:

- the publish ceiling: a minimal Django view (bench/ceiling) that parses the
  body and INSERTs it in one transaction, on the Procfile's web line (same
  gunicorn settings), driven by the same publishers: what Django itself
  serves on this machine;
- the peer: django-webhook from PyPI in the bench's own virtualenv
  (BENCH_PEER_VENV, var/bench/peer-venv by default; made on first use with
  pip), published through its documented path (a model saved, its post_save
  enqueues fire_webhook, its Celery worker POSTs) on the Procfile's web and
  worker lines, delivering to the same sink.

Each runs alone (the service's stack is stopped by then) on a database of its
own (the bench's name + `_ceiling` / `_peer`) and, for the peer, Redis db 9.
"""

import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import payloads, procs
from bench.analysis import sustained_rate
from bench.api import Api
from bench.ceiling import TABLE_SQL
from bench.context import Context
from bench.stack import (
    ROOT,
    Database,
    Stack,
    StackError,
    flush_redis,
    postgres_groups,
    procfile_commands,
)

PEER_VENV = Path(
    os.environ.get("BENCH_PEER_VENV", ROOT / "var" / "bench" / "peer-venv")
)
PEER_REDIS_URL = os.environ.get("BENCH_PEER_REDIS_URL", "redis://127.0.0.1:6379/9")
# django-webhook and what its quickstart needs, pinned like the service's own.
PEER_REQUIREMENTS = (
    "django-webhook==0.0.15",
    "Django==5.2.19",
    "celery[redis]==5.7.0",
    "gunicorn==27.0.1",
    "psycopg2-binary==2.9.13",
)
PEER_PATH = "/fast/peer"


def _database(ctx: Context, suffix: str) -> Database:
    parts = urlsplit(ctx.database.url)
    return Database(urlunsplit(parts._replace(path=f"/{ctx.database.name}{suffix}")))


def _commands(wsgi: str, celery_app: str | None = None) -> dict[str, str]:
    """The Procfile's web (and worker) lines, serving another app."""
    procfile = procfile_commands()
    # Without the service's gunicorn hooks (its Prometheus bookkeeping, which
    # the peer's venv cannot import).
    web = re.sub(r"\s--config\s+python:webhooks_project\.\S+", "", procfile["web"])
    commands = {"web": web.replace("webhooks_project.wsgi", wsgi)}
    if celery_app is not None:
        commands["worker"] = procfile["worker"].replace(
            "-A webhooks_project", f"-A {celery_app}"
        )
    return commands


def _env(ctx: Context, *, bin_dir: Path, **values: str) -> dict[str, str]:
    env = {
        key: os.environ[key]
        for key in ("HOME", "LANG", "LC_ALL", "TZ", "USER")
        if key in os.environ
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        # The same WEB_CONCURRENCY, WEB_THREADS … as the service, if given.
        **ctx.env_extra,
        **values,
    )
    return env


def _events(count: int) -> list:
    return [(payloads.event(seq=n, resource_id=f"C{n % 20}"), ()) for n in range(count)]


def publish_ceiling(
    ctx: Context, *, count: int, threads: int, name: str = "ceiling"
) -> dict:
    """Publishes/s of the minimal view, sustained (10th-90th percentile 202);
    its logs under single/<name>."""
    database = _database(ctx, "_ceiling")
    database.create_empty()
    connection = database.connect()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(TABLE_SQL)
    finally:
        connection.close()
    log_dir = ctx.log_dir / "single" / name
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        env=_env(
            ctx,
            bin_dir=Path(sys.executable).parent,
            DATABASE_URL=database.url,
            DJANGO_SETTINGS_MODULE="bench.ceiling.settings",
        ),
        log_dir=log_dir,
        port=procs.free_port(),
        commands=_commands("bench.ceiling.wsgi"),
    )
    try:
        stack.start("web")
        stack.wait_healthy(time.monotonic() + 60)
        api = Api(stack.base_url, "none", batch=1)
        api.publish_many(
            _events(min(200, count)), threads=threads, deadline=ctx.deadline()
        )
        # The same parts as 1c's shares, to set its cost per event beside
        # the least a publish can cost.
        cpu = procs.CpuShares(
            {
                "web": lambda: stack.pids("web"),
                **postgres_groups(database, parts=("web",)),
            }
        )
        published = api.publish_many(
            _events(count), threads=threads, deadline=ctx.deadline()
        )
        shares = cpu.per_event(len(published))
    finally:
        stack.stop()
    database.settle()  # the peer, next, runs alone too
    print(
        f" ({name}: CPU ms per publish {procs.CpuShares.describe(shares)})",
        end="",
        flush=True,
    )
    return {
        "rate": sustained_rate(sorted(item.answered for item in published)),
        "requests": len(published),
        "threads": threads,
        "cpu_ms_per_request": shares,
    }


def peer_venv(log: Path) -> Path:
    """The peer's virtualenv (made, or brought up to PEER_REQUIREMENTS); its bin."""
    bin_dir = PEER_VENV / "bin"
    marker = PEER_VENV / "bench-requirements.txt"
    wanted = "\n".join(PEER_REQUIREMENTS) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return bin_dir
    for args, timeout in (
        ([sys.executable, "-m", "venv", str(PEER_VENV)], 120),
        (
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS],
            600,
        ),
    ):
        process = procs.spawn(args, env=dict(os.environ), cwd=ROOT, log=log)
        try:
            process.wait(timeout=timeout)
        finally:
            procs.stop(process, grace=1)
        if process.returncode != 0:
            raise StackError(
                f"{' '.join(args[:4])} … exited {process.returncode}; "
                f"see {log}:\n{procs.log_tail(log)}"
            )
    marker.write_text(wanted)
    return bin_dir


def _run(args: list[str], *, env: dict[str, str], log: Path, timeout: float) -> None:
    process = procs.spawn(args, env=env, cwd=ROOT, log=log)
    try:
        process.wait(timeout=timeout)
    finally:
        procs.stop(process, grace=1)
    if process.returncode != 0:
        raise StackError(f"{' '.join(args)} exited {process.returncode}; see {log}")


def django_webhook(ctx: Context, *, count: int, threads: int) -> dict:
    """Deliveries/s of django-webhook, sustained (10th-90th percentile receipt),
    one webhook on the sink, `count` events published by `threads`."""
    log_dir = ctx.log_dir / "single" / "django-webhook"
    log_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = peer_venv(log_dir / "venv.log")
    database = _database(ctx, "_peer")
    database.create_empty()
    flush_redis(PEER_REDIS_URL)
    env = _env(
        ctx,
        bin_dir=bin_dir,
        DATABASE_URL=database.url,
        REDIS_URL=PEER_REDIS_URL,
        DJANGO_SETTINGS_MODULE="bench.peer.settings",
    )
    python = str(bin_dir / "python")
    _run(
        [python, "-m", "django", "migrate", "--noinput"],
        env=env,
        log=log_dir / "migrate.log",
        timeout=180,
    )
    _run(
        [python, "-m", "bench.peer.setup", "--url", ctx.sink.url(PEER_PATH)],
        env=env,
        log=log_dir / "setup.log",
        timeout=60,
    )
    stack = Stack(
        env=env,
        log_dir=log_dir,
        port=procs.free_port(),
        scale={"worker": ctx.workers},
        commands=_commands("bench.peer.wsgi", "bench.peer"),
    )
    sink = ctx.sink
    try:
        stack.start("web", "worker")
        stack.wait_healthy(time.monotonic() + 60)
        sink.reset()
        api = Api(stack.base_url, "none", batch=1)
        api.publish(payloads.event(seq=0, resource_id="WARMUP"))
        if not sink.wait_until(
            lambda stats: stats["counts"].get("fast", 0) >= 1,
            deadline=time.monotonic() + 60,
            alive=stack.check_alive,
        ):
            raise StackError(
                f"django-webhook delivered no warm-up event; see {log_dir}"
            )
        sink.reset()
        deadline = ctx.deadline()
        published = api.publish_many(_events(count), threads=threads, deadline=deadline)
        sink.wait_until(
            lambda stats: stats["counts"].get("fast", 0) >= count,
            deadline=deadline,
            alive=stack.check_alive,
        )
        receipts = [r for r in sink.receipts() if r.path == PEER_PATH]
    finally:
        stack.stop()
        sink.reset()
    answered = [item.answered for item in published]
    return {
        "rate": sustained_rate(sorted(r.done for r in receipts)),
        "publish_rate": sustained_rate(sorted(answered)),
        "published": len(published),
        "received": len(receipts),
        "threads": threads,
        "version": PEER_REQUIREMENTS[0],
    }
