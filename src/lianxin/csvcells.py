"""CSV cells that a spreadsheet will not run (OWASP "CSV Injection").

A text cell that begins with = + - @ (or their full-width forms, which some spreadsheets read
the same way), a tab or a carriage return is taken as a formula by Excel, WPS and LibreOffice:
`=HYPERLINK(...)` in an address or a meter number would run on the team lead's machine. As
OWASP recommends, such a cell is prefixed with a single quote, which the spreadsheet shows as
text and hides. Numbers (a negative reading) are left as they are: only text is escaped.
No Django here: the readings export and the web exports share it.
"""

import polars as pl

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_TRIGGER_RE = "^[=+\\-@\t\r＝＋－＠]"


def safe_cell(value):
    """A value for csv.writer: text that could start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def safe_text_columns(df: pl.DataFrame) -> pl.DataFrame:
    """The same for every text column of a frame about to be written as CSV."""
    text = [c for c, t in df.schema.items() if t == pl.String]
    return df.with_columns(
        [
            pl.when(pl.col(c).str.contains(_TRIGGER_RE))
            .then(pl.lit("'") + pl.col(c))
            .otherwise(pl.col(c))
            .alias(c)
            for c in text
        ]
    )
