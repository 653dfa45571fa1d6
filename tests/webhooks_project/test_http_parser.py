"""The Procfile's gunicorn parses requests with its C parser (gunicorn-h1c in
requirements.txt; docs/operations.md, "Sizing the web process")."""

from gunicorn.config import Config
from gunicorn.http.message import _check_fast_parser


def test_gunicorn_uses_its_c_http_parser_by_default():
    # http_parser=auto: the C parser when gunicorn-h1c is importable and
    # recent enough, else silently the pure-Python one.
    assert _check_fast_parser(Config()) is True
