"""What Django's browser middleware costs an API request, in-process.

    python -m bench.middleware_timing [--rounds 30] [--requests 200]

Builds two WSGI handlers in one process: one with settings.MIDDLEWARE as it
is, one with Django's own session-user and messages middleware in place of
webhooks_project/middleware.py's (which API paths skip). Sends each the same
`POST /api/v1/events` without a key (a 401 from DRF: the whole middleware
chain runs, and no SQL), alternating in rounds of `--requests`, and prints
the median CPU time per request of each. Alternating in one process is what
makes a difference of a few percent visible on a noisy machine; the figure
is the gap, not the absolute times. Not a test: figures only.
"""

import argparse
import io
import logging
import os
import statistics
import sys
import time

from bench.stack import ROOT

DJANGOS = {
    "webhooks_project.middleware.AuthenticationMiddleware": (
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    ),
    "webhooks_project.middleware.MessageMiddleware": (
        "django.contrib.messages.middleware.MessageMiddleware"
    ),
}
BODY = b'{"type": "order.created"}'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")
    os.environ.setdefault("DEBUG", "true")  # no production keys needed: no SQL
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory, override_settings

    logging.disable(logging.WARNING)  # one "error … 401" line per request
    ours = list(settings.MIDDLEWARE)
    chains = {
        "Django's": [DJANGOS.get(m, m) for m in ours],
        "ours (API skips them)": ours,
    }
    handlers = {}
    for name, middleware in chains.items():
        with override_settings(MIDDLEWARE=middleware):
            handlers[name] = WSGIHandler()
    environ = (
        RequestFactory()
        .post("/api/v1/events", data=BODY, content_type="application/json")
        .environ
    )

    def timed(handler: WSGIHandler) -> float:
        started = time.process_time()
        for _ in range(args.requests):
            response = handler(
                {**environ, "wsgi.input": io.BytesIO(BODY)}, lambda *a, **k: None
            )
            b"".join(response)
            response.close()
        return (time.process_time() - started) / args.requests * 1e6

    per_request: dict[str, list[float]] = {name: [] for name in handlers}
    for _ in range(args.rounds):
        for name, handler in handlers.items():
            per_request[name].append(timed(handler))
    for name, times in per_request.items():
        print(f"{name:24} {statistics.median(times):7.1f} µs CPU per request (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
