"""Who is acting in this request or job: set by an edge (`with acting("customer"):` around its service call), read
by what records history (apps.bookings.history). A context variable, so it follows the call into sync_to_async's
thread. Nothing set: "system" (jobs, commands)."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

KINDS = ("customer", "agent", "staff", "system")
_current: ContextVar[tuple[str, str]] = ContextVar("parkgate_actor", default=("system", ""))


@contextmanager
def acting(kind: str, label: str = "") -> Iterator[None]:
    """`kind` one of KINDS; `label` who exactly (an agent's code, a staff username), never a customer's data."""
    if kind not in KINDS:
        raise ValueError(f"unknown actor kind {kind!r}")
    token = _current.set((kind, label))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> tuple[str, str]:
    return _current.get()
