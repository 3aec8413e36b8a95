"""The text reader checks a clean chunk's lines as arrays (`_check_lines`); the line-by-line
check (`_check_lines_slow`, kept for chunks with a damaged line) is the reference it must match:
the same good lines with the same numbers, and the same rejections (line, value, reason)."""

from types import SimpleNamespace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lianxin.ingest.readers.text import _check_lines, _check_lines_slow

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
