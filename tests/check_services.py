"""`make test` needs PostgreSQL and Redis: say how to reach them if missing."""

import os
import sys

import psycopg2
import redis


def main() -> int:
    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    problems = []
    try:
        # Connect to the maintenance database: the test database is created later.
        base = database_url.rsplit("/", 1)[0] + "/postgres"
        psycopg2.connect(base, connect_timeout=3).close()
    except Exception as exc:
        problems.append(
            f"PostgreSQL is not reachable at {database_url} ({exc}).\n"
            "  Start it, or run: make test TEST_DATABASE_URL=postgres://USER@HOST:PORT/NAME"
        )
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(
            f"Redis is not reachable at {redis_url} ({exc}).\n"
            "  Start it, or run: make test TEST_REDIS_URL=redis://HOST:PORT/DB"
        )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
