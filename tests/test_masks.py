"""Column masks (security/masks.py): each kind's output, nulls, empty strings, unicode, chunked and dictionary
input, few and many distinct values, and equal inputs giving equal outputs (GROUP BY still groups)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
from unittest import mock

import duckdb
import pyarrow as pa
import pytest

from security import masks
from security.masks import REDACTED, Mask, apply_mask, mask_supports, masked_type

KEY = b"tenant-mask-key-0123456789abcdef"
MASK_KEY = hmac.new(KEY, b"omnisql/column-mask", hashlib.sha256).digest()
VALUES = ["ana@acme.io", "", None, "jürgen@müller.de", "日本語テキスト", "ana@acme.io", "no-at-sign", "a@b@c.org", "@",
          "x@line\nbreak"]


def _hmac(text: str) -> str:
    return hmac.new(MASK_KEY, text.encode(), hashlib.sha256).hexdigest()


def _expected(kind: str, value: str | None, keep: int = 4) -> str | None:
    if value is None:
        return None
    if kind == "redact":
        return REDACTED
    if kind == "hash":
        return _hmac(value)
    if kind == "email":
        local, at, domain = value.rpartition("@")
        return f"{_hmac(value)[:8]}****@{domain}" if at else f"{_hmac(value)[:8]}****"
    assert kind == "partial"
    return "*" * max(len(value) - keep, 0) + (value[-keep:] if keep else "")


@pytest.mark.parametrize("kind", ["redact", "hash", "email", "partial"])
def test_each_kind_matches_its_definition(kind: str) -> None:
    got = apply_mask(pa.array(VALUES), Mask(kind), KEY)  # type: ignore[arg-type]
    assert got.type == pa.string()
    assert got.to_pylist() == [_expected(kind, v) for v in VALUES]


def test_examples_read_as_documented() -> None:
    email = apply_mask(pa.array(["ana@acme.io", "bare"]), Mask("email"), KEY).to_pylist()
    assert email[0].endswith("****@acme.io") and len(email[0]) == len("12345678****@acme.io")
    assert email[1].endswith("****") and len(email[1]) == 12
    assert apply_mask(pa.array(["4111111111111111"]), Mask("partial"), KEY).to_pylist() == ["*" * 12 + "1111"]
    assert apply_mask(pa.array(["abc"]), Mask("partial", keep=0), KEY).to_pylist() == ["***"]
    assert apply_mask(pa.array(["ab"]), Mask("partial", keep=5), KEY).to_pylist() == ["ab"]


def test_partial_counts_characters_not_bytes() -> None:
    got = apply_mask(pa.array(["日本語テキスト", "ääää", "👍x"]), Mask("partial", keep=2), KEY).to_pylist()
    assert got == ["*****スト", "**ää", "👍x"]


def test_null_keeps_the_type_and_hides_everything() -> None:
    values = pa.array([1, None, 3], pa.int64())
    got = apply_mask(values, Mask("null"), KEY)
    assert got.type == pa.int64() and got.null_count == 3
    assert masked_type(Mask("null"), pa.int64()) == pa.int64()
    assert {masked_type(Mask(k), pa.int64()) for k in ("redact", "hash", "email", "partial")} == {pa.string()}


@pytest.mark.parametrize("kind", ["redact", "null", "hash", "email", "partial"])
def test_chunked_in_chunked_out_with_the_same_layout(kind: str) -> None:
    chunked = pa.chunked_array([VALUES[:3], [], VALUES[3:]], pa.string())
    got = apply_mask(chunked, Mask(kind), KEY)  # type: ignore[arg-type]
    assert isinstance(got, pa.ChunkedArray)
    assert [len(c) for c in got.chunks] == [3, 0, len(VALUES) - 3]
    assert got.to_pylist() == apply_mask(pa.array(VALUES), Mask(kind), KEY).to_pylist()  # type: ignore[arg-type]
    empty = apply_mask(pa.chunked_array([], pa.string()), Mask(kind), KEY)  # type: ignore[arg-type]
    assert isinstance(empty, pa.ChunkedArray) and len(empty) == 0


@pytest.mark.parametrize("kind", ["redact", "null", "hash", "email", "partial"])
def test_dictionary_input_masks_like_its_decoded_values(kind: str) -> None:
    plain = pa.array(VALUES * 3)
    encoded = plain.dictionary_encode()
    expected = apply_mask(plain, Mask(kind), KEY).to_pylist()  # type: ignore[arg-type]
    assert apply_mask(encoded, Mask(kind), KEY).to_pylist() == expected  # type: ignore[arg-type]
    chunked = pa.chunked_array([encoded.slice(0, 5), plain.slice(5).dictionary_encode()])
    assert apply_mask(chunked, Mask(kind), KEY).to_pylist() == expected  # type: ignore[arg-type]
    odd = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 2]), pa.array(["ana", None, "bo", "unused"]))
    got = apply_mask(odd, Mask(kind), KEY).to_pylist()  # type: ignore[arg-type]
    assert got == apply_mask(pa.array(["ana", None, None, "bo"]), Mask(kind), KEY).to_pylist()  # type: ignore


def test_non_string_values_are_masked_as_their_text() -> None:
    ints = apply_mask(pa.array([123456, None, 123456]), Mask("hash"), KEY).to_pylist()
    assert ints == [_hmac("123456"), None, _hmac("123456")]
    assert apply_mask(pa.array([123456]), Mask("partial", keep=2), KEY).to_pylist() == ["****56"]
    stamp = pa.array([datetime.datetime(2024, 5, 1, 12, 0)], pa.timestamp("us", tz="UTC"))
    assert apply_mask(stamp, Mask("partial", keep=1), KEY).to_pylist()[0].endswith("Z")
    assert apply_mask(pa.array([b"ana@acme.io"]), Mask("hash"), KEY).to_pylist() == [_hmac("ana@acme.io")]
    assert apply_mask(pa.array(["x"], pa.large_string()), Mask("email"), KEY).type == pa.string()


def test_unmaskable_types_fail_clearly_and_are_detectable_up_front() -> None:
    labels = pa.array([["bug", "p1"], None], pa.list_(pa.string()))
    assert apply_mask(labels, Mask("redact"), KEY).to_pylist() == [REDACTED, None]
    assert mask_supports(Mask("redact"), labels.type) and not mask_supports(Mask("hash"), labels.type)
    assert mask_supports(Mask("hash"), pa.int64()) and mask_supports(Mask("email"), pa.dictionary(pa.int8(), pa.utf8()))
    with pytest.raises(ValueError, match="redact or null"):
        apply_mask(labels, Mask("hash"), KEY)
    with pytest.raises(ValueError, match="redact or null"):
        apply_mask(pa.array([b"\xff\xfe"]), Mask("partial"), KEY)


def test_equal_inputs_give_equal_outputs_so_group_by_still_groups() -> None:
    raw = pa.array([f"user{i % 7}@team{i % 7 % 3}.example" for i in range(1000)])
    for kind in ("hash", "email"):
        masked = apply_mask(raw, Mask(kind), KEY)  # type: ignore[arg-type]
        con = duckdb.connect()
        con.register("t", pa.table({"raw": raw, "masked": masked}))
        pairs = con.sql("SELECT count(DISTINCT raw), count(DISTINCT masked), count(DISTINCT (raw, masked)) "
                        "FROM t").fetchall()[0]
        assert pairs == (7, 7, 7)


def test_the_key_matters_and_is_required() -> None:
    one = apply_mask(pa.array(["ana@acme.io"]), Mask("hash"), KEY).to_pylist()
    other = apply_mask(pa.array(["ana@acme.io"]), Mask("hash"), b"another-tenant-key-0123456789ab").to_pylist()
    assert one != other
    assert one != [hmac.new(KEY, b"ana@acme.io", hashlib.sha256).hexdigest()], "derived key, not the raw one"
    for bad in (b"", b"short"):
        with pytest.raises(ValueError, match="at least 16 bytes"):
            apply_mask(pa.array(["x"]), Mask("email"), bad)
    assert apply_mask(pa.array(["x"]), Mask("redact"), b"").to_pylist() == [REDACTED]


def test_hmac_runs_once_per_distinct_value() -> None:
    few = pa.array([f"v{i % 10}" for i in range(50_000)] + [None])
    many = pa.chunked_array([[f"v{i}" for i in range(3000)], [f"v{i}" for i in range(1000, 5000)]])
    for values, distinct in ((few, 10), (few.dictionary_encode(), 10), (many, 5000)):
        for kind in ("hash", "email"):
            with mock.patch.object(masks._HmacSha256, "digest", autospec=True,
                                   side_effect=masks._HmacSha256.digest) as digest:
                apply_mask(values, Mask(kind), KEY)  # type: ignore[arg-type]
            assert digest.call_count == distinct


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64])
def test_the_precomputed_hmac_is_hmac(key_length: int) -> None:
    key = bytes(range(key_length))
    mac = masks._HmacSha256(key)
    for value in (b"", b"a", "ü@日本".encode(), bytes(range(256)) * 3):
        assert mac.digest(value) == hmac.digest(key, value, "sha256")
    with pytest.raises(ValueError, match="at most 64"):
        masks._HmacSha256(bytes(65))


def test_many_distinct_values_stay_distinct() -> None:
    values = pa.array([f"{i:06d}@x.io" for i in range(20_000)])
    got = apply_mask(values, Mask("hash"), KEY)
    assert len(set(got.to_pylist())) == 20_000
    assert got[123].as_py() == _hmac("000123@x.io")


def test_mask_rejects_unknown_kinds_and_bad_keep() -> None:
    with pytest.raises(ValueError, match="mask kind"):
        Mask("scramble")  # type: ignore[arg-type]
    for keep in (-1, True, 2.5):
        with pytest.raises(ValueError, match="keep"):
            Mask("partial", keep=keep)  # type: ignore[arg-type]
