"""Public ids in URL paths."""

import re
import uuid

# docs/api.md: ids are UUIDs, 36 characters. uuid.UUID() also takes braces,
# "urn:uuid:" and bare hex, which would make one resource answer at several
# paths; capitals stay accepted (an id written in capitals is the same id).
_CANONICAL = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def parse_public_id(value: str) -> uuid.UUID | None:
    """The UUID written in its 36-character form, or None for anything else."""
    if not _CANONICAL.fullmatch(value):
        return None
    return uuid.UUID(value)
