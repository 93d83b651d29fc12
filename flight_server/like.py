"""SQL LIKE for the metadata filter patterns (GetDbSchemas, GetTables), in time linear in the pattern.

A regex translation (``%`` → ``.*``) backtracks: ``%%%%…x`` against a long name takes exponential time and froze
the server. Here a pattern is split at ``%`` into segments of literal characters and ``_`` (any one character).
The first segment must match at the start, the last at the end, and each middle one is matched at its leftmost
place after the previous one: leftmost is always right, because a later match leaves no more room for the rest.
Work is O(len(pattern) + len(value)²) whatever the pattern: repeated ``%`` cost nothing, and a segment is tried
only at the places of a value (catalog names are short)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LikePattern"]

Segment = tuple[str | None, ...]  # None: ``_``, any one character


@dataclass
class LikePattern:
    """A compiled LIKE pattern (``%``, ``_``, backslash escapes; a trailing lone backslash is literal).
    ``steps`` counts the character comparisons of the last ``matches`` call (tests bound it)."""

    segments: tuple[Segment, ...]  # split at %: one segment means no % at all
    steps: int = 0

    @classmethod
    def compile(cls, pattern: str) -> LikePattern:
        segments: list[Segment] = []
        current: list[str | None] = []
        i = 0
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\" and i + 1 < len(pattern):
                current.append(pattern[i + 1])
                i += 2
                continue
            if ch == "%":
                segments.append(tuple(current))
                current = []
            else:
                current.append(None if ch == "_" else ch)
            i += 1
        segments.append(tuple(current))
        if len(segments) > 2:  # ``%%`` is ``%``: an empty middle segment matches anywhere, so it is dropped
            segments = [segments[0], *(s for s in segments[1:-1] if s), segments[-1]]
        return cls(tuple(segments))

    def matches(self, value: str) -> bool:
        self.steps = 0
        first, last = self.segments[0], self.segments[-1]
        if len(self.segments) == 1:
            return len(value) == len(first) and self._at(first, value, 0)
        end = len(value) - len(last)
        if len(first) > end or not self._at(first, value, 0) or not self._at(last, value, end):
            return False
        position = len(first)
        for segment in self.segments[1:-1]:
            found = self._find(segment, value, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    def _at(self, segment: Segment, value: str, start: int) -> bool:
        for offset, token in enumerate(segment):
            self.steps += 1
            if token is not None and token != value[start + offset]:
                return False
        return True

    def _find(self, segment: Segment, value: str, start: int, end: int) -> int:
        """The leftmost place in ``value[start:end]`` where ``segment`` matches, or -1."""
        for position in range(start, end - len(segment) + 1):
            self.steps += 1
            if self._at(segment, value, position):
                return position
        return -1
