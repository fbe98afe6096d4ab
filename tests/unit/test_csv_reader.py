"""The CSV reader: separators sniffed or given, encodings, line numbers, bad rows, bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from actors.readers import BadRow, ReaderError, csv_reader, inspect_file, read_rows
from tests.support.files import rows_of, write


@pytest.mark.parametrize("sep", [",", "\t", "|", ";"])
def test_csv_separator_is_sniffed_and_quotes_hold_separators_quotes_and_newlines(
    tmp_path: Path, sep: str
) -> None:
    text = (
        f'name{sep}note{sep}n\n"Smith{sep} J"{sep}"said ""hi""\nand left"{sep}1\nplain{sep}{sep}2\n'
    )
    info, rows = rows_of(write(tmp_path, "a.csv", text))
    assert info.format == "csv" and info.separator == sep and info.encoding == "utf-8"
    assert info.first_row == ("name", "note", "n")
    assert rows == [
        (1, ["name", "note", "n"]),
        (2, [f"Smith{sep} J", 'said "hi"\nand left', "1"]),
        (4, ["plain", "", "2"]),  # the record started on line 2 spans two lines
    ]


def test_csv_given_separator_wins_over_the_sniff(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a;b,c\n1;2,3\n")
    assert rows_of(path, separator=",")[1] == [(1, ["a;b", "c"]), (2, ["1;2", "3"])]
    assert rows_of(path, separator="tab")[0].separator == "\t"
    with pytest.raises(ReaderError, match="not a single character"):
        inspect_file(path, separator=";;")


def test_csv_one_column_defaults_to_comma_and_headerless_files_read_the_same(
    tmp_path: Path,
) -> None:
    info, rows = rows_of(write(tmp_path, "a.csv", "alpha\nbeta\n"))
    assert info.separator == "," and rows == [(1, ["alpha"]), (2, ["beta"])]


def test_csv_semicolon_with_decimal_commas_is_not_mistaken_for_comma(tmp_path: Path) -> None:
    info, rows = rows_of(write(tmp_path, "a.csv", "a;b;c\n1,5;2;3\n4;5,25;6\n"))
    assert info.separator == ";" and rows[1] == (2, ["1,5", "2", "3"])


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv_line_endings_keep_line_numbers(tmp_path: Path, newline: str) -> None:
    text = newline.join(["a,b", '"x', 'y",1', "", "c,d", ""])
    _, rows = rows_of(write(tmp_path, "a.csv", text))
    assert [r[0] for r in rows] == [1, 2, 5]  # type: ignore[index]
    assert rows[1] == (2, [f"x{newline}y", "1"])


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_csv_line_numbers_hold_across_read_blocks(tmp_path: Path, newline: str) -> None:
    text = "id,text\n" + "".join(f'{i},"two{newline}lines"{newline}' for i in range(1, 30_000))
    _, rows = rows_of(write(tmp_path, "a.csv", text))
    assert len(rows) == 30_000
    assert rows[-1] == (59_998, ["29999", f"two{newline}lines"])


def test_csv_mixed_line_endings(tmp_path: Path) -> None:
    _, rows = rows_of(write(tmp_path, "a.csv", "a,b\r\nc,d\ne,f\rg,h"))
    assert rows == [(1, ["a", "b"]), (2, ["c", "d"]), (3, ["e", "f"]), (4, ["g", "h"])]


def test_csv_blank_rows_are_skipped_and_ragged_rows_kept(tmp_path: Path) -> None:
    _, rows = rows_of(write(tmp_path, "a.csv", "a,b,c\n\n,,\n1\n1,2,3,4\n"))
    assert rows == [(1, ["a", "b", "c"]), (4, ["1"]), (5, ["1", "2", "3", "4"])]


def test_csv_utf8_bom_never_leaks_into_the_first_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbfid,name\n1,\xc3\xa9\n")
    info, rows = rows_of(path)
    assert info.encoding == "utf-8-sig" and info.first_row == ("id", "name")
    assert rows[1] == (2, ["1", "é"])
    assert rows_of(path, encoding="utf-8")[0].first_row == ("id", "name")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_csv_utf16_with_bom_is_decoded(tmp_path: Path, codec: str) -> None:
    bom = "\ufeff".encode(codec)
    path = write(tmp_path, "a.csv", bom + "id\tname\n1\tZoë\n".encode(codec))
    info, rows = rows_of(path)
    assert info.encoding == "utf-16" and info.separator == "\t"
    assert rows == [(1, ["id", "name"]), (2, ["1", "Zoë"])]


def test_csv_utf16_without_bom_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(
        ReaderError, match="UTF-16 without a byte-order mark; pass encoding=utf-16-le"
    ):
        inspect_file(write(tmp_path, "a.csv", "id,name\n1,x\n".encode("utf-16-le")))


def test_csv_invalid_utf8_names_the_line_and_suggests_an_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,b\n1,2\nCaf\xe9,3\n", encoding="cp1252")
    with pytest.raises(ReaderError) as err:
        inspect_file(path)
    assert str(err.value) == (
        "file is not valid UTF-8 (byte 0xe9 at line 3); "
        "re-save it as UTF-8 or pass encoding=cp1252 (or the encoding it was saved in)"
    )
    assert rows_of(path, encoding="cp1252")[1][2] == (3, ["Café", "3"])


def test_csv_invalid_utf8_past_the_sample_fails_while_reading_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"a,b\n" + b"1,2\n" * 30_000 + b"\xff,3\n")
    info = inspect_file(path)
    rows = read_rows(path, info)
    with pytest.raises(ReaderError, match=r"byte 0xff at line 30002\)"):
        for _ in rows:
            pass


def test_csv_unknown_or_non_text_encoding_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a\n")
    for name in ("klingon", "hex"):
        with pytest.raises(ReaderError, match="unknown text encoding"):
            inspect_file(path, encoding=name)


def test_csv_nul_byte_is_a_bad_row_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a,b\n" + "1,2\n" * 50 + "x\x00y,3\n4,5\n")
    _, rows = rows_of(path)
    assert rows[51] == BadRow(52, "contains a NUL byte")
    assert rows[52] == (53, ["4", "5"])


def test_csv_over_long_field_on_one_line_is_a_bad_row(tmp_path: Path) -> None:
    big = "x" * (csv_reader.FIELD_LIMIT + 10)
    _, rows = rows_of(write(tmp_path, "a.csv", f"a,b\n1,{big}\n2,3\n"))
    assert rows == [
        (1, ["a", "b"]),
        BadRow(2, f"row has a field longer than {csv_reader.FIELD_LIMIT} characters"),
        (3, ["2", "3"]),
    ]


def test_csv_over_long_line_of_many_fields_is_a_bad_row(tmp_path: Path) -> None:
    line = ",".join(["abcdefgh"] * (csv_reader.RECORD_LIMIT // 8))
    _, rows = rows_of(write(tmp_path, "a.csv", f"a,b\n{line}\n2,3\n"))
    assert rows[1] == BadRow(2, f"row is longer than {csv_reader.RECORD_LIMIT} characters")
    assert rows[2] == (3, ["2", "3"])


def test_csv_quote_that_never_closes_names_the_line_where_it_opened(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'a,b\n1,2\n3,"never closed\n4,5\n6,7\n')
    info = inspect_file(path)
    with pytest.raises(
        ReaderError, match=r"^line 3: a quote \(\"\) opened in this record never closes$"
    ):
        list(read_rows(path, info))


def test_csv_runaway_quote_stops_at_the_field_limit_in_bounded_memory(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'a,b\n1,"runaway\n' + "more text, and more\n" * 300_000)
    info = inspect_file(path)
    tracemalloc.start()
    try:
        with pytest.raises(
            ReaderError, match=r"^line 2: a quoted field runs past 1048576 characters"
        ):
            list(read_rows(path, info))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * csv_reader.FIELD_LIMIT  # a few copies of one field, not the file


def test_csv_decoding_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,email,amount\n")
        line = "{0},Name {0} Ünïcode,user{0}@example.com,{0}.25\n"
        for i in range(0, 300_000, 1000):
            out.write("".join(line.format(n) for n in range(i, i + 1000)))
    size = path.stat().st_size
    assert size > 15_000_000
    info = inspect_file(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_rows(path, info))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 300_001
    assert peak < 2_000_000, f"peak {peak} bytes for a {size}-byte file"
