"""Where the checkout and the virtualenv's commands are."""

import sys
from pathlib import Path

# The repository's root (manage.py, Procfile, .env.example, scripts/, bench/).
ROOT = Path(__file__).resolve().parents[2]
# The folder of this interpreter's commands (gunicorn, celery, ...).
BIN = Path(sys.executable).parent
