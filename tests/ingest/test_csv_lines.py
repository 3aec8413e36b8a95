"""The text reader checks a clean chunk's lines as arrays (`_check_lines`); the line-by-line
check (`_check_lines_slow`, kept for chunks with a damaged line) is the reference it must match:
the same good lines with the same numbers, and the same rejections (line, value, reason)."""

from types import SimpleNamespace

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lianxin.ingest.readers import Options, open_source
from lianxin.ingest.readers.text import _check_lines, _check_lines_slow, _parse_body, _plain_chunk

field = st.sampled_from(["", " ", "M1", "2024-03-01 00:15", "1.5", '"a,b"', '"x"', "表号", "\t"])


@st.composite
def chunk(draw):
    sep = draw(st.sampled_from([",", "\t", ";"]))
    n_fields = draw(st.integers(1, 4))
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        shape = draw(st.sampled_from(["row", "row", "blank", "trailing", "ragged"]))
        if shape == "blank":
            line = draw(st.sampled_from(["", " ", "  \t ", sep * draw(st.integers(0, 3))]))
        else:
            count = n_fields if shape != "ragged" else draw(st.integers(1, n_fields + 2))
            line = sep.join(draw(field).replace(sep, " ") for _ in range(count))
            if shape == "trailing":
                line += sep * draw(st.integers(1, 3))
        lines.append(line + draw(st.sampled_from(["", "\r"])))
    end = draw(st.sampled_from(["\n", ""]))
    return sep, n_fields, "\n".join(lines).encode() + end.encode(), draw(st.integers(0, 2))


@settings(max_examples=300, deadline=None)
@given(case=chunk(), lineno=st.integers(0, 5))
@example(case=(",", 1, b"", 0), lineno=0)  # an empty chunk: no line, not one blank line
def test_array_check_of_lines_matches_the_line_by_line_check(case, lineno):
    sep, n_fields, data, header_lines = case
    src = SimpleNamespace(kind="long", _points=[], encoding="UTF-8")
    body, numbers, rejected, last = _check_lines(src, data, sep, n_fields, header_lines, lineno)
    good, good_numbers, slow_rejected, slow_last = _check_lines_slow(
        src, data, "utf-8-sig", sep, n_fields, header_lines, lineno
    )
    assert last == slow_last
    assert numbers.tolist() == good_numbers
    assert rejected == slow_rejected
    assert [ln.removesuffix(b"\r") for ln in body.split(b"\n")[:-1]] == good


@settings(max_examples=300, deadline=None)
@given(case=chunk(), lineno=st.integers(0, 5))
# A line one field short and another one field over: the separators add up as if every line
# were right. Both must still be found and named.
@example(case=(",", 3, b"a,b,c\nd,e\nf,g,h,i\nj,k,l\n", 0), lineno=0)
@example(case=(",", 2, b"h,h\nd,e\n,\n", 1), lineno=0)  # the header in the chunk, empty fields
def test_a_chunk_parsed_whole_is_what_the_line_check_gives(case, lineno):
    """The usual chunk is parsed without a per-line check (_plain_chunk): whenever it takes a
    chunk, its rows and line numbers are those of the line check, which rejects none."""
    sep, n_fields, data, header_lines = case
    names = [f"c{i}" for i in range(n_fields)]
    plain = _plain_chunk(data, names, sep, header_lines, lineno)
    src = SimpleNamespace(kind="long", _points=[], encoding="UTF-8")
    body, numbers, rejected, last = _check_lines(src, data, sep, n_fields, header_lines, lineno)
    if plain is None:
        return
    frame, plain_numbers, plain_last = plain
    assert rejected == []
    assert plain_last == last
    assert plain_numbers.tolist() == numbers.tolist()
    assert frame.rows() == _parse_body(body, names, sep).rows()


def test_a_short_and_a_long_line_that_add_up_are_both_rejected(tmp_path):
    """A missing field on one line and an extra one on another, in one chunk and across a
    chunk boundary: each line rejected with its number, the others read."""
    lines = ["电能表资产编号,数据时间,正向有功总(kWh)"]
    for k in range(40):
        lines.append(f"M1,2024-03-01 {k // 4:02d}:{k % 4 * 15:02d}:00,{100 + k * 0.5:.4f}")
    lines[5] = "M1,2024-03-01 01:00:00"  # line 6: a field short
    lines[30] = "M1,2024-03-01 07:15:00,114.5000,9"  # line 31: a field over
    path = tmp_path / "regs.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for chunk_bytes in (1 << 20, 300, 97):
        src = open_source(path, Options(time_zone="Asia/Shanghai", chunk_bytes=chunk_bytes))
        batches = list(src.batches())
        rej = pl.concat([b.rejections for b in batches])
        assert rej.sort("line").select("line", "code").rows() == [
            (6, "wrong_field_count"),
            (31, "wrong_field_count"),
        ], chunk_bytes
        regs = pl.concat([b.records for b in batches]).filter(pl.col("unit") == "kWh reg")
        assert sorted(regs["_line"].to_list()) == [n for n in range(2, 42) if n not in (6, 31)]
