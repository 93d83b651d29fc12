"""Column masks as vectorized Arrow kernels, applied to raw batches before DuckDB sees them.

Everything is Arrow compute except the keyed HMAC of ``hash`` and ``email``, which runs once per *distinct*
value (the column is deduplicated, its distinct values are hashed, and the result is gathered back by index),
so a low-cardinality column costs a handful of HMACs however many rows it has. Equal inputs give equal outputs,
so GROUP BY, DISTINCT and joins on a masked column still work, and reveal only which values were equal.

The HMAC key is derived from the tenant's mask key under the domain ``column-mask`` (as ``security.signing``
derives its keys): even if an operator reused the server's signing secret as the mask key, a user who hashes a
value of their choosing (say a PR title reading ``omnisql/session-token``) learns nothing that signs anything.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypeAlias, get_args

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MASK_KINDS", "MIN_KEY_BYTES", "Mask", "MaskKind", "apply_mask", "mask_supports", "masked_type"]

MaskKind = Literal["redact", "null", "hash", "email", "partial"]
MASK_KINDS: tuple[str, ...] = get_args(MaskKind)
REDACTED = "[HIDDEN]"
MIN_KEY_BYTES = 16  # a short (or empty) key makes hashed e-mail addresses reversible by a dictionary attack
_DOMAIN = b"omnisql/column-mask"

Values: TypeAlias = pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class Mask:
    kind: MaskKind
    keep: int = 4  # partial: keep the last N characters

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS:
            raise ValueError(f"mask kind must be one of {', '.join(MASK_KINDS)}, not {self.kind!r}")
        if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 0:
            raise ValueError(f"mask keep must be a whole number >= 0, not {self.keep!r}")


def masked_type(mask: Mask, original: pa.DataType) -> pa.DataType:
    """The type of a masked column: ``null`` keeps the original type, every other mask produces text."""
    return original if mask.kind == "null" else pa.string()


def mask_supports(mask: Mask, original: pa.DataType) -> bool:
    """Whether ``mask`` can apply to a column of this type (``redact``/``null``: any; the others: text-castable),
    so a policy can be checked when it is loaded rather than when a query first meets it."""
    if mask.kind in ("redact", "null"):
        return True
    if pa.types.is_dictionary(original):
        original = original.value_type
    return _is_binary(original) or _castable_to_text(original)


def apply_mask(values: Values, mask: Mask, key: bytes) -> Values:
    """``values`` masked: an Array gives an Array, a ChunkedArray a ChunkedArray (same chunk lengths)."""
    if isinstance(values, pa.ChunkedArray) and mask.kind not in ("hash", "email"):  # chunk by chunk: the layout
        return pa.chunked_array([apply_mask(c, mask, key) for c in values.chunks],  # stays, empty chunks too
                                type=masked_type(mask, values.type))
    if mask.kind == "null":
        return pa.nulls(len(values), values.type)
    if mask.kind == "redact":
        return _per_dictionary(values, _redact)
    if mask.kind == "partial":
        return _per_dictionary(values, lambda v: _partial(_as_text(v, mask), mask.keep))
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a {mask.kind} mask needs a key of at least {MIN_KEY_BYTES} bytes")
    mac = _HmacSha256(hmac.new(key, _DOMAIN, hashlib.sha256).digest())
    one: Callable[[pa.Array], pa.Array] = mac.hex_of if mask.kind == "hash" else partial(_email, mac)
    return _per_dictionary(values, lambda v: _per_distinct(_as_text(v, mask, raw_bytes=mask.kind == "hash"), one))


def _per_dictionary(values: Values, kernel: Callable[[Values], Values]) -> Values:
    """Dictionary input: mask each chunk's dictionary (its distinct values) and gather by the indices."""
    if not pa.types.is_dictionary(values.type):
        return kernel(values)
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([_per_dictionary(c, kernel) for c in values.chunks], type=pa.string())
    return pc.take(kernel(values.dictionary), values.indices)


def _redact(values: Values) -> Values:
    return pc.if_else(pc.is_valid(values), pa.scalar(REDACTED), pa.scalar(None, pa.string()))


def _as_text(values: Values, mask: Mask, raw_bytes: bool = False) -> Values:
    """Strings as they are, binary as bytes (``hash`` only) or validated UTF-8, anything else cast to text."""
    if pa.types.is_string(values.type) or (raw_bytes and values.type == pa.binary()):
        return values
    try:
        return pc.cast(values, pa.binary() if raw_bytes and _is_binary(values.type) else pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"a {mask.kind} mask needs values that read as text; {values.type} does not "
                         "(use redact or null for this column)") from exc


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _castable_to_text(t: pa.DataType) -> bool:
    try:
        pc.cast(pa.nulls(0, t), pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _partial(text: Values, keep: int) -> Values:
    """'*' for every character but the last ``keep`` (code points, so multi-byte characters stay whole)."""
    if keep:
        tail = pc.utf8_slice_codeunits(text, start=-keep)
    else:  # start=-0 would keep everything
        tail = pc.if_else(pc.is_valid(text), "", pa.scalar(None, pa.string()))
    hidden = pc.max_element_wise(pc.subtract(pc.utf8_length(text), keep), 0)
    return pc.binary_join_element_wise(pc.binary_repeat("*", hidden), tail, "")


def _per_distinct(text: Values, masked: Callable[[pa.Array], pa.Array]) -> Values:
    """``masked`` applied to the distinct non-null values, gathered back per row (nulls stay null)."""
    if isinstance(text, pa.Array):
        encoded = pc.dictionary_encode(text)  # one hash pass: distinct values and each row's index
        return pc.take(masked(encoded.dictionary), encoded.indices)  # nulls are in the indices
    # one set of distinct values across every chunk (each is hashed once per column, not once per chunk), and
    # the chunks' own layout kept, so the masked column lines up with its batch's other columns
    distinct = pc.unique(text).drop_null()
    out = masked(distinct)
    return pa.chunked_array([pc.take(out, pc.index_in(c, value_set=distinct)) for c in text.chunks],
                            type=pa.string())


def _email(mac: _HmacSha256, distinct: pa.Array) -> pa.Array:
    """``hash8****@domain``: the keyed HMAC of the whole address, then the address's own domain (after its last
    '@', as a quoted local part may hold one); ``hash8****`` for a value without '@'."""
    prefix = pc.utf8_slice_codeunits(mac.hex_of(distinct), 0, 8)
    at_domain = pc.struct_field(pc.extract_regex(distinct, r"(?P<at_domain>@[^@]*)\z"), [0])
    return pc.binary_join_element_wise(prefix, "****", pc.fill_null(at_domain, ""), "")


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once: per value that leaves two
    ``copy``/``update`` pairs, half the cost of ``hmac.digest`` (which redoes the key schedule every call).
    Checked against ``hmac`` in the tests."""

    _BLOCK = 64

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:  # the derived key is 32 bytes; RFC 2104 would hash a longer one first
            raise ValueError("the HMAC key must be at most 64 bytes")
        padded = key.ljust(self._BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def digest(self, value: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hex_of(self, distinct: pa.Array) -> pa.Array:
        """The hex HMAC of each (non-null) value, as one string array built from a single buffer."""
        digest = self.digest
        data = binascii.hexlify(b"".join([digest(v) for v in distinct.cast(pa.binary()).to_pylist()]))
        offsets = array("i", range(0, len(data) + 1, 64))
        return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
