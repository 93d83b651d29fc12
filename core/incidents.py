"""An unexpected error (a bug of ours) as the operator's log sees it: an incident id, the exception's type and
where it was raised, for each exception of its chain — never its message. A message may quote what the code was
holding when it failed (``KeyError('ana@example.com')``, a decoded row, a filter value, an unmasked value), and
the log must never carry row contents; the stack is enough to find the bug, and the incident id ties it to the
answer the caller saw."""

from __future__ import annotations

import logging
import traceback
import uuid

__all__ = ["log_incident"]

MAX_CHAIN = 8  # causes followed (a cycle or a very long chain stops here)


def log_incident(log: logging.Logger, what: str, exc: BaseException) -> str:
    """Log ``exc`` under a new incident id (ERROR) and return the id for the caller's answer."""
    incident = uuid.uuid4().hex[:12]
    log.error("unexpected error %s (incident %s):\n%s", what, incident, _stack_without_messages(exc))
    return incident


def _stack_without_messages(exc: BaseException) -> str:
    """Python's traceback layout (the first cause first), each exception's message replaced by a note."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < MAX_CHAIN:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\nduring which (or because of which) this followed:\n".join(
        "".join(traceback.format_tb(e.__traceback__))
        + f"{type(e).__module__}.{type(e).__qualname__} (message withheld: it may hold row values)"
        for e in reversed(chain))
