"""Any bytes through detection and every reader: rows or a ReaderError, in bounded time, and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.readers import BadRow, ReaderError, inspect_file, read_rows
from tests.support import (
    NS,
    hand_xlsx,
    sheet_xml,
)
from tests.support.files import write


def test_hostile_files_of_a_few_megabytes_finish_quickly(tmp_path: Path) -> None:
    cases = {
        "one-line.csv": b"a," * 2_500_000,
        "runaway.csv": b'x\n"' + b"y" * 5_000_000,
        "many-quotes.csv": b'"' * 5_000_000,
        "nul.csv": b"a,b\n" + b"\0" * 5_000_000,
        "cells.xlsx": hand_xlsx(
            tmp_path / "h.xlsx",
            sheet_xml('<row r="1">' + '<c r="A1"><v>1</v></c>' * 200_000 + "</row>"),
        ).read_bytes(),
    }
    for name, data in cases.items():
        path = write(tmp_path, name, data)
        start = time.monotonic()
        try:
            info = inspect_file(path)
            for _ in read_rows(path, info):
                pass
        except ReaderError:
            pass
        assert time.monotonic() - start < 3, name


BASE_SHEET = sheet_xml(
    '<row r="1" spans="1:3"><c r="A1" t="s"><v>0</v></c><c r="B1" s="1"><v>45000.5</v></c></row>'
    '<row r="2"><c r="A2" t="inlineStr"><is><t>a &amp; b</t></is></c><c r="B2"><f>1</f><v>2</v></c>'
    '<c r="C2" t="e"><v>#N/A</v></c></row><row r="3"><c r="A3" t="b"><v>1</v></c></row>'
).encode()


FUZZ_STRINGS = f"<sst {NS}><si><t>x</t></si><si><r><t>y</t></r></si></sst>"


FUZZ_STYLES = f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="22"/></cellXfs></styleSheet>'


NEAR_CSV = st.text(
    alphabet=st.sampled_from(list('ab,;|\t"\n\r \x00é€\ufeff') + ["\ud7ff"]), max_size=400
)


MAGIC = st.sampled_from(
    [b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xef\xbb\xbf", b"\xff\xfe"]
)


FLIPS = st.lists(
    st.tuples(st.integers(0, len(BASE_SHEET)), st.sampled_from(b'<>/"=&;!?x0 \x00\xff')),
    min_size=1,
    max_size=6,
)


def mutated(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, value in flips:
        out[at % len(out)] = value
    return bytes(out)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.builds(lambda m, b: ("file", m + b), MAGIC, st.binary(max_size=600)),
        NEAR_CSV.map(lambda s: ("file", s.encode("utf-8", "surrogatepass"))),
        FLIPS.map(lambda flips: ("sheet", mutated(BASE_SHEET, flips))),  # broken XML in a sound zip
    ),
    st.sampled_from([None, "cp1252", "utf-16"]),
)
def test_any_bytes_give_rows_or_a_reader_error_and_nothing_else(
    tmp_path: Path, case: tuple[str, bytes], encoding: str | None
) -> None:
    kind, data = case
    if kind == "sheet":
        path = hand_xlsx(tmp_path / "fuzz.xlsx", data, strings=FUZZ_STRINGS, styles=FUZZ_STYLES)
    else:
        path = write(tmp_path, "fuzz.bin", data)
    start = time.monotonic()
    try:
        info = inspect_file(path, encoding=encoding)
        for item in read_rows(path, info):
            assert isinstance(item, BadRow) or all(c is None or isinstance(c, str) for c in item[1])
    except ReaderError as exc:
        assert str(exc)
    assert time.monotonic() - start < 2
