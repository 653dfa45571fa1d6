"""Scenario 1d's publisher: `events.services.publish_event` called in a loop,
in-process, as a Django project that embeds the service would call it.

Run by bench.scenarios with the stack's environment (so it writes to the
bench database, and the stack's workers deliver what it publishes):

    python -m bench.inprocess --events N --prefix I --webhooks W [--threads T]

Event n is about resource `{prefix}{n % webhooks}` (one webhook each, as in
1c); each call commits its event and deliveries before the next starts.
`--threads` loops run side by side, each with its own connection. Prints one
JSON line: the rate, and each event's id with the times around its call.
"""

import argparse
import json
import os
import threading
import time


def run(args: argparse.Namespace) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")
    django.setup()
    from django.db import connection

    from bench.context import PUBLISHER
    from bench.payloads import event
    from events.services import publish_event
    from subscriptions.models import Client

    publisher = Client.objects.get(name=PUBLISHER)
    published: list[list] = [[]] * args.events

    def loop(first: int) -> None:
        try:
            for n in range(first, args.events, args.threads):
                body = event(seq=n, resource_id=f"{args.prefix}{n % args.webhooks}")
                sent = time.time()
                result = publish_event(publisher=publisher, **body)
                published[n] = [str(result.event.id), sent, time.time()]
        finally:
            connection.close()

    # Warm: imports, the connection, the prepared statement, the caches.
    publish_event(publisher=publisher, type=event(seq=-1)["type"], payload={})
    threads = [threading.Thread(target=loop, args=(t,)) for t in range(args.threads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "events": args.events,
        "threads": args.threads,
        "seconds": seconds,
        "rate": args.events / seconds,
        "published": published,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--webhooks", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    print(json.dumps(run(parser.parse_args())))


if __name__ == "__main__":
    main()
