"""GetSqlInfo: every info id of the spec, in the exact dense-union layout clients decode (a wrong layout makes
the Go driver panic). Transactions are reported as NONE so ADBC never sends BeginTransaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

__all__ = ["SQL_INFO_SCHEMA", "sql_info_table"]

_STRING, _BOOL, _BIGINT, _INT32, _STRING_LIST, _INT_MAP = range(6)
_VALUE_TYPE = pa.dense_union([
    pa.field("string_value", pa.string()), pa.field("bool_value", pa.bool_()),
    pa.field("bigint_value", pa.int64()), pa.field("int32_bitmask", pa.int32()),
    pa.field("string_list", pa.list_(pa.string())),
    pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
])
SQL_INFO_SCHEMA = pa.schema([pa.field("info_name", pa.uint32(), nullable=False),
                             pa.field("value", _VALUE_TYPE, nullable=False)])

_KEYWORDS = ["EXPLAIN", "ANALYZE", "QUALIFY", "ILIKE", "EXCLUDE", "REPLACE", "PIVOT", "UNPIVOT"]
_NUMERIC = ["abs", "ceil", "floor", "round", "sqrt", "ln", "log10", "power", "mod", "sign"]
_STRING_FN = ["lower", "upper", "length", "substring", "concat", "trim", "replace", "regexp_matches",
              "starts_with", "split_part", "strpos"]
_SYSTEM = ["current_user", "version"]
_DATETIME = ["now", "current_date", "date_trunc", "date_diff", "date_part", "extract", "strftime", "age"]


def _info() -> dict[int, tuple[int, Any]]:
    import pyarrow

    # (type code, value) per SqlInfo id, each typed as FlightSql.proto declares it (tests/test_flightsql_conformance.py
    # checks every id). 6 and 7 (Substrait min/max version) are null: the spec's answer when Substrait is off.
    b, s, i, n = _BOOL, _STRING, _INT32, _BIGINT
    info: dict[int, tuple[int, Any]] = {
        0: (s, "OmniSQL"), 1: (s, "0.1.0"), 2: (s, pyarrow.__version__), 3: (b, True), 4: (b, True),
        5: (b, False), 6: (s, None), 7: (s, None), 8: (i, 0), 9: (b, False), 10: (b, False), 11: (b, False),
        100: (i, 0), 101: (i, 0),
        500: (b, False), 501: (b, False), 502: (b, False), 503: (i, 1), 504: (s, '"'), 505: (i, 0),
        506: (b, True), 507: (i, 3), 508: (_STRING_LIST, _KEYWORDS), 509: (_STRING_LIST, _NUMERIC),
        510: (_STRING_LIST, _STRING_FN), 511: (_STRING_LIST, _SYSTEM), 512: (_STRING_LIST, _DATETIME),
        513: (s, "\\"), 514: (s, ""), 515: (b, True), 516: (b, True), 517: (_INT_MAP, []), 518: (b, True),
        519: (b, False), 520: (b, True), 521: (b, True), 522: (i, 3), 523: (b, True), 524: (b, True),
        525: (i, 3), 526: (i, 3), 527: (b, False), 528: (i, 2), 529: (s, "schema"), 530: (s, "procedure"),
        531: (s, "catalog"), 532: (b, True), 533: (i, 0), 534: (i, 0), 535: (i, 0), 536: (b, False),
        537: (b, False), 538: (i, 15), 539: (b, True), 540: (i, 3),
        541: (n, 0), 542: (n, 0), 543: (n, 0), 544: (n, 0), 545: (n, 0), 546: (n, 0), 547: (n, 0),
        548: (n, 0), 549: (n, 0), 550: (n, 0), 551: (n, 0), 552: (n, 0), 553: (n, 0), 554: (n, 0),
        555: (n, 0), 556: (b, False), 557: (n, 0), 558: (n, 0), 559: (n, 0), 560: (n, 0), 561: (n, 0),
        562: (i, 0), 563: (b, False), 564: (i, 1), 565: (b, False), 566: (b, False), 567: (i, 2),
        568: (i, 0), 569: (i, 2), 570: (i, 0), 571: (i, 0), 572: (b, False), 573: (b, False),
        574: (b, False), 575: (b, False), 576: (b, False),
    }
    return info


def sql_info_table(requested: Sequence[int]) -> pa.Table:
    """Rows for the requested ids (all known ids when empty); unknown ids are skipped, as the spec allows."""
    info = _info()
    ids = [x for x in requested if x in info] if requested else sorted(info)
    children: list[list[Any]] = [[] for _ in range(6)]
    types, offsets = [], []
    for info_id in ids:
        code, value = info[info_id]
        types.append(code)
        offsets.append(len(children[code]))
        children[code].append(value)
    arrays = [pa.array(values, type=_VALUE_TYPE.field(k).type) for k, values in enumerate(children)]
    union = pa.UnionArray.from_dense(pa.array(types, pa.int8()), pa.array(offsets, pa.int32()), arrays,
                                     [f.name for f in _VALUE_TYPE], list(range(6)))
    return pa.Table.from_arrays([pa.array(ids, pa.uint32()), union], schema=SQL_INFO_SCHEMA)
