"""Byte counts as an operator wrote them (``16 MiB``, ``1.5 GiB``): one spelling in every limit's message."""

from __future__ import annotations

__all__ = ["format_size"]


def format_size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"
