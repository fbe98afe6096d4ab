"""Hostile and broken input through the HTTP API: each file gets a precise answer (a 4xx at
submission when it can be known then, else a failed ticket or row errors naming the row) in
bounded time and memory, nothing lands outside the blob store, and the service keeps serving.

Over 400 lines on purpose: one hostile file per test, all against one module-scoped service.
"""

from __future__ import annotations

import csv
import io
import re
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.blobs import LocalBlobs
from actors.readers.xlsx import strings as shared_strings
from tests.support import (
    NS,
    RELNS,
    Harness,
    Watch,
    compound_file,
    hand_xlsx,
    inline_row,
    lie_about_size,
    served,
    sheet_xml,
    tree_rss,
)
from tests.support.handmade import biff8_stream, biff_cell

HEADER = b"email,name,age\r\n"
BOUNDARY = "hostile-boundary-7MA4YWxk"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One embedded service (SQLite + in-process worker) for the module; each test its own tenant."""
    tmp = tmp_path_factory.mktemp("hostile")
    h = Harness.start(tmp, database_url=f"sqlite:///{tmp / 'importer.db'}")
    try:
        yield h
    finally:
        h.stop()


_tenants = iter(range(10_000))


def tenant(h: Harness) -> dict[str, str]:
    """A fresh tenant with a contacts dataset; its native auth header."""
    name = f"t{next(_tenants)}"
    creds = h.tenant(name)
    h.dataset(name)
    return {"Authorization": f"Bearer {creds['native']['token']}"}


def multipart(file: bytes, filename: str = "upload.csv", **fields: str) -> bytes:
    """A multipart body written by hand, so filenames go over the wire exactly as given."""
    out = b""
    for name, value in {"dataset": "contacts", **fields}.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8", "surrogateescape")
    return out + file + f"\r\n--{BOUNDARY}--\r\n".encode()


def _file_part(filename: str) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'
            "email\r\na@x.io\r\n\r\n").encode()


def post(h: Harness, auth: dict[str, str], body: bytes | Iterator[bytes], **headers: str) -> Any:
    return h.client.post(
        "/imports", content=body, headers={**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers}
    )


def submit(h: Harness, auth: dict[str, str], data: bytes, **fields: str) -> tuple[Any, float]:
    """POST a file; (response, seconds taken)."""
    start = time.monotonic()
    resp = post(h, auth, multipart(data, **fields))
    return resp, time.monotonic() - start


def failures(h: Harness, auth: dict[str, str], ticket: int) -> list[tuple[int, str]]:
    items = h.client.get(f"/imports/{ticket}/results?outcome=failed&limit=100", headers=auth).json()["items"]
    return [(i["line"], i["error"]) for i in items]


# ---------------------------------------------------------------- upload limits


def test_the_body_limit_is_the_configured_one_not_litestars_10_mb_default(svc: Harness) -> None:
    auth = tenant(svc)
    body = b"email,name,age,notes\r\n" + b"".join(b"b%d@x.io,B,%d,%s\r\n" % (i, i, b"n" * 1_000_000) for i in range(12))
    assert len(body) > 12_000_000  # over Litestar's 10 MB default, under the configured 50 MB
    resp, _ = submit(svc, auth, body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["file"]["size"] == len(body)
    view = svc.wait(resp.json()["id"])
    assert view.state == "completed" and view.created == 12


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """A service configured with a 1 MB upload limit, 4 form parts and 1 KB fields."""
    tmp = tmp_path_factory.mktemp("small")
    h = Harness.start(
        tmp, database_url=f"sqlite:///{tmp / 'importer.db'}", max_upload_bytes=1024 * 1024,
        max_form_parts=4, max_form_field_bytes=1024,
    )
    try:
        yield h
    finally:
        h.stop()


def _spooled(h: Harness) -> list[str]:
    return sorted(p.name for p in (h.rt.blobs.root / "tmp").iterdir())


def test_uploads_over_the_configured_limit_are_refused_as_they_stream(small: Harness) -> None:
    auth = tenant(small)
    big = HEADER + b"a@x.io,A,1\r\n" * 100_000  # 1.2 MB
    resp = post(small, auth, multipart(big))
    assert resp.status_code == 413 and resp.json()["error"]["message"] == "file is larger than the 1 MB limit"
    declared = post(small, auth, multipart(big * 3))  # Content-Length says too much: refused before reading
    assert declared.status_code == 413 and declared.json()["error"]["message"] == f"upload is {len(multipart(big * 3))} bytes; the limit is 1 MB"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while the body streams
        yield multipart(b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")]
        for _ in range(200):
            yield b"x" * 8192
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    resp = post(small, auth, chunked())
    assert resp.status_code == 413 and "larger than the 1 MB limit" in resp.json()["error"]["message"]
    assert _spooled(small) == []  # the partial upload was deleted


@pytest.mark.parametrize(("body", "message"), [
    (lambda: multipart(b"x", **{f"f{i}": "v" for i in range(5)}), "too many form parts (more than 4)"),
    (lambda: multipart(b"x", name="n" * 5000), "form field 'name' is longer than 1024 bytes"),
    (lambda: f"--{BOUNDARY}\r\n".encode() + b"".join(b"X-%d: v\r\n" % i for i in range(40)) + b"\r\n\r\nx", "Maximum header count exceeded"),
    (lambda: multipart(b"x", filename="f" * 100_000), "Maximum header size exceeded"),
    (lambda: _file_part("a.csv") + _file_part("b.csv") + f"--{BOUNDARY}--\r\n".encode(), "only one file may be uploaded per request"),
    (lambda: b"not multipart at all", "malformed multipart body"),
    (lambda: multipart(b"x" * 1000)[:-500], "malformed multipart body: the file part is incomplete"),
])
def test_hostile_multipart_bodies_get_a_clear_400(small: Harness, body: Callable[[], bytes], message: str) -> None:
    auth = tenant(small)
    resp = post(small, auth, body())
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]
    assert _spooled(small) == []


# ---------------------------------------------------------------- filenames


@pytest.mark.parametrize(("filename", "shown"), [
    ("../../../../../../tmp/evil.csv", "evil.csv"),
    ("..\\..\\..\\evil.csv", "evil.csv"),
    ("/etc/passwd", "passwd"),
    ("a/b/../../evil.csv", "evil.csv"),
    ("evil\x00\x07\x1b[31m.csv", "evil[31m.csv"),
    ("\u202eevil.csv", "evil.csv"),
    ("..", "upload"),
    ("C:\\Windows\\evil.csv", "evil.csv"),
    ("x" * 600, "x" * 255),
])
def test_filenames_never_touch_paths_outside_the_blob_store(svc: Harness, filename: str, shown: str) -> None:
    auth = tenant(svc)
    root = svc.tmp
    before = {p for p in root.rglob("*") if "blobs" not in p.parts}
    resp = post(svc, auth, multipart(HEADER + b"a@x.io,A,1\r\n", filename=filename))
    assert resp.status_code == 202, resp.text
    view = svc.wait(resp.json()["id"])
    assert view.file is not None and view.file.blob == f"sources/{view.uuid}"
    assert view.file.filename == shown
    assert {p for p in root.rglob("*") if "blobs" not in p.parts} - before <= {root / "importer.db-wal", root / "importer.db-shm"}
    assert not list(Path("/tmp").glob("evil*")) and not (root.parent / "evil.csv").exists()
    with pytest.raises(ValueError, match="escapes the store"):
        LocalBlobs(svc.rt.blobs.root).path("sources/../../" + filename.replace("\x00", ""))


# ---------------------------------------------------------------- CSV


def _rows(n: int) -> bytes:
    return b"".join(b"u%d@x.io,U,%d\r\n" % (i, i) for i in range(n))


CSV_REFUSED = {  # known at submission: 400 with the reader's or the mapper's sentence
    "wrong encoding": (HEADER + "zoë@x.io,Zoë,1\r\n".encode("cp1252"),
                       r"^file is not valid UTF-8 \(byte 0xeb at line 2\); re-save it as UTF-8 or pass encoding=cp1252"),
    "utf-16 without BOM": ("email,name\r\na@x.io,A\r\n".encode("utf-16-le"), "looks like UTF-16 without a byte-order mark"),
    "duplicate header": (b"email,name,EMAIL\r\na@x.io,A,b@x.io\r\n", r"header names column 'EMAIL' twice \(columns 1 and 3\)"),
    "empty header names only": (b",,\r\na,b,c\r\n", "the header row matches no field of the dataset"),
    "binary junk": (bytes(range(256)) * 40, r"not a CSV, XLSX or XLS file \(it holds binary data\)"),
    "empty file": (b"", "the uploaded file is empty"),
    "blank file": (b"\r\n\r\n\r\n", r"file has no rows \(it is blank\)"),
}


@pytest.mark.parametrize("case", list(CSV_REFUSED))
def test_csv_that_cannot_be_imported_is_refused_at_submission(svc: Harness, case: str) -> None:
    data, message = CSV_REFUSED[case]
    auth = tenant(svc)
    resp, took = submit(svc, auth, data)
    assert resp.status_code == 400, resp.text
    assert re.search(message, resp.json()["error"]["message"]), resp.json()
    assert took < 5


CSV_ROW_ERRORS: dict[str, tuple[bytes, int, list[tuple[int, str]]]] = {
    # (file, rows created, [(line, error)] for the failed rows)
    "BOM, CRLF/LF/CR mix, quoted newlines": (
        b"\xef\xbb\xbf" + HEADER + b'a@x.io,A,1\nb@x.io,"two\r\nlines",2\rc@x.io,"say ""hi""",3\r\n', 3, []),
    "ragged rows": (
        HEADER + b"a@x.io,A,1\r\nb@x.io,B\r\nc@x.io,C,3,4\r\nd@x.io,D,4,,\r\n", 2,
        [(3, "line 3: 2 values, but the header has 3 columns"), (4, "line 4: 4 values, but the header has 3 columns")]),
    "NUL byte": (HEADER + b"a@x.io,A,1\r\nb@x.io,B\x00,2\r\nc@x.io,C,3\r\n", 2, [(3, "line 3: contains a NUL byte")]),
    "field over the csv module's limit": (
        HEADER + b"a@x.io,A,1\r\nb@x.io," + b"y" * (1 << 20) + b"y,2\r\nc@x.io,C,3\r\n", 2,
        [(3, "line 3: row has a field longer than 1048576 characters")]),
    "a line with no end": (HEADER + b"a@x.io,A,1\r\n" + b"q," * 2_500_000, 1, [(3, "line 3: row is longer than 4194304 characters")]),
    "a quote that runs to the end": (
        HEADER + b'a@x.io,A,1\r\nb@x.io,"open' + b"z" * 3_000_000, 1,
        [(3, "line 3: row has a field longer than 1048576 characters")]),
    "empty and unknown header names are ignored": (b"email,,name,extra\r\na@x.io,x,A,y\r\n", 1, []),
    "invalid values name the field": (
        HEADER + b"not-an-email,A,1\r\nb@x.io,B,old\r\n", 0,
        [(2, "line 2: field 'email': 'not-an-email' is not a valid email address"),
         (3, "line 3: field 'age': expected an integer, got 'old'")]),
}


@pytest.mark.parametrize("case", list(CSV_ROW_ERRORS))
def test_broken_csv_rows_are_row_errors_that_name_the_line_and_the_rest_imports(svc: Harness, case: str) -> None:
    data, created, errors = CSV_ROW_ERRORS[case]
    auth = tenant(svc)
    tracemalloc.start()
    try:
        resp, _ = submit(svc, auth, data)
        assert resp.status_code == 202, resp.text
        view = svc.wait(resp.json()["id"], timeout=30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert view.state == "completed", view.reason
    assert (view.created, view.failed) == (created, len(errors))
    assert failures(svc, auth, view.ticket) == errors
    assert peak < 64 * 1024 * 1024 + 2 * len(data), peak


CSV_FAILED_TICKETS = {  # only reading on shows the problem: the ticket fails, naming the line
    "a quote that never closes, over many lines": (
        HEADER + b'a@x.io,A,1\r\nb@x.io,"open\r\n' + b"more,text\r\n" * 500_000,
        r'^line 3: a (quoted field runs past 1048576 characters|record runs past 4194304 characters over \d+ lines); a quote \(\"\) probably never closes$'),
    "a quote that never closes before the end": (
        HEADER + b'a@x.io,A,1\r\nb@x.io,"open,2\r\nc@x.io,C,3\r\n', r'^line 3: a quote \(\"\) opened in this record never closes$'),
    "wrong encoding past the sample": (
        HEADER + _rows(6000) + "zoë@x.io,Zoë,1\r\n".encode("cp1252"),
        r"^file is not valid UTF-8 \(byte 0xeb at line 6002\); re-save it as UTF-8"),
}


@pytest.mark.parametrize("case", list(CSV_FAILED_TICKETS))
def test_csv_broken_past_its_start_fails_the_ticket_with_the_line(svc: Harness, case: str) -> None:
    data, reason = CSV_FAILED_TICKETS[case]
    auth = tenant(svc)
    resp, _ = submit(svc, auth, data)
    assert resp.status_code == 202, resp.text
    view = svc.wait(resp.json()["id"], timeout=30)
    assert view.state == "failed" and re.search(reason, view.reason or ""), view.reason
    status = svc.client.get(f"/imports/{view.ticket}", headers=auth).json()
    assert status["state"] == "failed" and re.search(reason, status["error"]), status


# ---------------------------------------------------------------- XLSX and XLS


def _billion_laughs() -> str:
    entities = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    return f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY l0 "lol">{entities}]>'


def _xlsx(tmp: Path, rows: str, **kw: Any) -> bytes:
    return hand_xlsx(tmp / "book.xlsx", sheet_xml(rows), **kw).read_bytes()


def _header_row() -> str:
    return inline_row(1, "email", "name", "age")


def _workbook_cases(tmp: Path) -> dict[str, tuple[bytes, str]]:
    head = _header_row()
    encrypted = compound_file({"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x10" * 100})
    return {
        "zip bomb (inflates 100x past its size)": (
            _xlsx(tmp, head + "<row/>" * 4_000_000), r"workbook is too large when unpacked .*refused as a possible zip bomb"),
        "billion laughs in the sheet": (
            hand_xlsx(tmp / "b.xlsx", _billion_laughs() + sheet_xml(head + '<row r="2"><c><v>&l9;</v></c></row>').split("?>", 1)[1]).read_bytes(),
            r"^workbook XML declares a DTD/entities; refused$"),
        "external entity in the workbook": (
            hand_xlsx(tmp / "x.xlsx", sheet_xml(head), workbook='<?xml version="1.0"?><!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                      f'<workbook {NS} {RELNS}><sheets><sheet name="&x;" sheetId="1" r:id="rId1"/></sheets></workbook>').read_bytes(),
            r"^workbook XML declares a DTD/entities; refused$"),
        "entities in shared strings": (
            hand_xlsx(tmp / "s.xlsx", sheet_xml('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'),
                      strings=_billion_laughs() + f"<sst {NS}><si><t>&l9;</t></si></sst>").read_bytes(),
            r"^workbook XML declares a DTD/entities; refused$"),
        "truncated archive": (_xlsx(tmp, head + inline_row(2, "a@x.io", "A", "1"))[:-60], "corrupt or truncated workbook"),
        "corrupt archive": (b"PK\x03\x04" + bytes(range(256)) * 8, "corrupt or truncated workbook"),
        "a zip that is not a workbook": (_zip({"notes.txt": "hello", "data/x.csv": "a,b"}), r"^zip archive is not an XLSX workbook$"),
        "a word document": (_zip({"_rels/.rels": f'<Relationships xmlns="x"><Relationship Id="r" Type="{REL_DOC}" Target="word/document.xml"/></Relationships>',
                                  "word/document.xml": "<document/>"}), r"^zip archive is not an XLSX workbook$"),
        "password-protected xlsx": (encrypted, r"^workbook is password-protected$"),
        "password-protected xls": (compound_file({"Workbook": _BOF + _FILEPASS + _EOF}), r"^workbook is password-protected$"),
        "truncated xls": (_xls_bytes(tmp)[:3000], "corrupt or"),
        "corrupt xls": (compound_file({"Workbook": b"\x09\x08garbage" * 100}), "corrupt or"),
        "xls whose sector chain loops": (_looping_xls(), "corrupt or"),
        "xls whose first row names a shared string past its table": (
            compound_file({"Workbook": biff8_stream(biff_cell(0xFD, 0, 0, struct.pack("<I", 7)), ["email"])}),
            r"refers to shared string 7, but there are 1"),
        "html renamed .xls": (b"<html><body><table><tr><td>email</td></tr></table></body></html>", r"looks like HTML"),
        "excel 2003 xml renamed .xls": (
            b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"></Workbook>',
            r"Excel 2003 XML spreadsheet; save it as XLSX"),
    }


REL_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_BOF = bytes.fromhex("0908100000060500") + b"\0" * 12
_FILEPASS = bytes.fromhex("2f0002000000")
_EOF = bytes.fromhex("0a000000")


def _looping_xls() -> bytes:
    """A one-sheet XLS whose workbook stream's sector chain (sectors 2..9) turns back at sector 5."""
    cells = b"".join(biff_cell(0xFD, r, 0, struct.pack("<I", 0)) for r in range(40))
    data = bytearray(compound_file({"Workbook": biff8_stream(cells, ["email"])}))
    struct.pack_into("<I", data, 512 + 4 * 5, 3)  # the FAT is sector 0
    return bytes(data)


def _zip(parts: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return buf.getvalue()


def _xls_bytes(tmp: Path, rows: int = 300) -> bytes:
    import xlwt

    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    for c, v in enumerate(["email", "name", "age"]):
        ws.write(0, c, v)
    for r in range(1, rows + 1):
        for c, v in enumerate([f"x{r}@x.io", f"X {r}", r]):
            ws.write(r, c, v)
    path = tmp / "book.xls"
    wb.save(str(path))
    return path.read_bytes()


def test_hostile_workbooks_are_refused_at_submission_quickly_and_in_bounded_memory(svc: Harness, tmp_path: Path) -> None:
    auth = tenant(svc)
    for case, (data, message) in _workbook_cases(tmp_path).items():
        filename = "book.xls" if "xls" in case and "xlsx" not in case else "book.xlsx"
        tracemalloc.start()
        try:
            resp, took = submit(svc, auth, data, filename=filename)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert resp.status_code == 400, (case, resp.text)
        assert re.search(message, resp.json()["error"]["message"]), (case, resp.json())
        assert took < 5, (case, took)
        assert peak < 32 * 1024 * 1024 + 3 * len(data), (case, peak)
        assert "root:" not in resp.text  # no external entity was ever resolved


def test_a_dimension_that_lies_about_the_row_count_changes_nothing(svc: Harness, tmp_path: Path) -> None:
    auth = tenant(svc)
    rows = _header_row() + "".join(inline_row(i, f"d{i}@x.io", f"D {i}", str(i)) for i in range(2, 502))
    data = hand_xlsx(tmp_path / "d.xlsx", sheet_xml(rows, dimension="A1:C2")).read_bytes()
    resp, _ = submit(svc, auth, data, filename="d.xlsx")
    assert resp.status_code == 202, resp.text
    view = svc.wait(resp.json()["id"])
    assert view.state == "completed" and view.created == 500


def test_renamed_workbooks_are_read_as_what_they_are(svc: Harness, tmp_path: Path) -> None:
    auth = tenant(svc)
    xlsx = hand_xlsx(tmp_path / "r.xlsx", sheet_xml(_header_row() + inline_row(2, "r@x.io", "R", "7"))).read_bytes()
    for data, name, fmt, rows in ((xlsx, "really-xlsx.xls", "xlsx", 1), (_xls_bytes(tmp_path), "really-xls.csv", "xls", 300)):
        resp, _ = submit(svc, auth, data, filename=name)
        assert resp.status_code == 202, resp.text
        view = svc.wait(resp.json()["id"])
        assert view.state == "completed" and view.created == rows and view.file is not None and view.file.format == fmt


def test_a_workbook_whose_sizes_lie_fails_its_ticket_when_the_lie_shows(svc: Harness, tmp_path: Path) -> None:
    """Declared sizes say 300 KB; the sheet inflates to 1.6 MB. The first row reads fine at
    submission, then the real count (not the declared one) stops the read: a failed ticket."""
    auth = tenant(svc)
    rows = _header_row() + "".join(inline_row(i, f"l{i}@x.io", "L", str(i)) for i in range(2, 20_000))
    path = lie_about_size(hand_xlsx(tmp_path / "l.xlsx", sheet_xml(rows)), "xl/worksheets/sheet1.xml", 300_000)
    resp, _ = submit(svc, auth, path.read_bytes(), filename="l.xlsx")
    assert resp.status_code == 202, resp.text
    view = svc.wait(resp.json()["id"])
    assert view.state == "failed" and (view.reason or "").startswith("corrupt or truncated workbook"), view.reason
    assert view.created == 0


def test_huge_shared_strings_are_refused_past_their_cap(svc: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_strings, "SST_TEXT_LIMIT", 200_000)  # 256 M characters in production
    auth = tenant(svc)
    strings = f"<sst {NS}>" + "<si><t>email</t></si><si><t>name</t></si><si><t>age</t></si>"
    strings += "".join(f"<si><t>{i:06d}{'s' * 100}</t></si>" for i in range(5000)) + "</sst>"
    cells = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c></row>'
    cells += "".join(f'<row r="{i + 2}"><c r="B{i + 2}" t="s"><v>{i + 3}</v></c></row>' for i in range(0, 5000, 50))
    data = hand_xlsx(tmp_path / "s.xlsx", sheet_xml(cells), strings=strings).read_bytes()
    resp, _ = submit(svc, auth, data, filename="s.xlsx")
    message = "workbook's shared strings exceed 200000 characters; refused"
    if resp.status_code == 400:
        assert resp.json()["error"]["message"] == message
    else:
        assert resp.status_code == 202, resp.text
        view = svc.wait(resp.json()["id"])
        assert view.state == "failed" and view.reason == message


def test_the_service_keeps_serving_other_tenants_while_hostile_files_are_handled(svc: Harness, tmp_path: Path) -> None:
    """While tenant A's hostile uploads are parsed and refused, tenant B's status answers stay quick."""
    a, b = tenant(svc), tenant(svc)
    ok, _ = submit(svc, b, HEADER + _rows(3))
    ticket = ok.json()["id"]
    svc.wait(ticket)
    latencies: list[float] = []

    def poll() -> None:
        start = time.monotonic()
        resp = svc.client.get(f"/imports/{ticket}", headers=b)
        latencies.append(time.monotonic() - start)
        assert resp.status_code == 200, resp.text

    with Watch(poll):
        cases = _workbook_cases(tmp_path)
        for data, _ in (cases["zip bomb (inflates 100x past its size)"], CSV_FAILED_TICKETS["a quote that never closes, over many lines"]):
            resp, _ = submit(svc, a, data)
            if resp.status_code == 202:
                svc.wait(resp.json()["id"])
    assert max(latencies) < 2.0, max(latencies)


# ---------------------------------------------------------------- CSV the service writes


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\x00")


def test_result_files_escape_cells_that_a_spreadsheet_would_run(svc: Harness) -> None:
    """The admin result CSV echoes the uploaded rows: formula-like cells get a leading quote."""
    creds = svc.tenant("formulas")
    svc.dataset("formulas", "transactions", {
        "fields": [{"name": "TransactionId", "type": "string", "required": True}, {"name": "Amount", "type": "decimal"},
                   {"name": "Memo", "type": "string"}],
        "key": ["TransactionId"],
    })
    auth = {"Authorization": f"Bearer {creds['admin']['bearer_token']}"}
    batch = svc.client.post("/api/adm/import/batch", headers=auth, json={"Type": "Transactions"}).json()["batchId"]
    rows = [["TransactionId", "Amount", "=Memo"]]
    payloads = ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", '=HYPERLINK("http://x","y")']
    for i, payload in enumerate(payloads):
        rows.append([f"T{i}", "1.5" if i % 2 else "=1+1", payload])  # "=1+1" is no decimal: a row error too
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    resp = svc.client.post(f"/api/adm/import/file?batchId={batch}", headers=auth,
                           files={"file": ("f.csv", buf.getvalue().encode(), "text/csv")})
    assert resp.status_code == 200, resp.text
    svc.wait(svc.batch_ticket("formulas", batch))
    result = svc.client.get(f"/api/adm/import/result?batchId={batch}", headers=auth)
    assert result.status_code == 200
    cells = [c for r in csv.reader(io.StringIO(result.text)) for c in r]
    dangerous = [c for c in cells if c.startswith(FORMULA_LEADS)]
    assert not dangerous, dangerous
    for payload in payloads:
        assert "'" + payload in cells
    assert "'=Memo" in cells and "'=1+1" in cells


def test_no_stdlib_xml_parser_or_openpyxl_touches_uploads() -> None:
    """The readers parse XML with expat alone, DTDs refused (stronger than defusedxml); nothing in
    the service imports xml.etree, minidom, sax or openpyxl, whose defaults expand entities."""
    import subprocess
    import sys

    code = (
        "import sys, app.main, actors.pipeline, actors.readers;"
        "bad = sorted(m for m in sys.modules if m.startswith(('xml.etree', 'xml.dom', 'xml.sax', 'openpyxl', 'lxml')));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", out.stdout


@pytest.mark.slow
def test_memory_stays_flat_while_a_50_mb_upload_streams_and_others_are_served(tmp_path: Path) -> None:
    """A real `importer serve`: the RSS of its whole process tree (the import runs in its worker
    child) while a 48 MB multipart body streams in and is imported stays far below the body's size;
    another tenant's status answers all along."""
    import httpx

    with served(tmp_path) as (url, proc, tokens):
        a = {"Authorization": f"Bearer {tokens['a']}"}
        b = {"Authorization": f"Bearer {tokens['b']}"}
        with httpx.Client(base_url=url, timeout=60) as client:
            small = client.post("/imports", headers=b, data={"dataset": "contacts"},
                                files={"file": ("b.csv", HEADER + _rows(5))})
            assert small.status_code == 202, small.text
            other = small.json()["id"]
            baseline = tree_rss(proc.pid)
            peak = [baseline]
            latencies: list[float] = []

            def watch() -> None:
                peak[0] = max(peak[0], tree_rss(proc.pid))
                start = time.monotonic()
                resp = client.get(f"/imports/{other}", headers=b)
                latencies.append(time.monotonic() - start)
                assert resp.status_code == 200, resp.text

            row = b"n" * 1_000_000

            def body() -> Iterator[bytes]:
                head = multipart(b"")
                yield head[: -len(f"\r\n--{BOUNDARY}--\r\n")]
                yield b"email,name,age,notes\r\n"
                for i in range(48):
                    yield b"big%d@x.io,Big,%d," % (i, i)
                    for at in range(0, len(row), 65536):
                        yield row[at : at + 65536]
                    yield b"\r\n"
                yield f"\r\n--{BOUNDARY}--\r\n".encode()

            with Watch(watch), httpx.Client(base_url=url, timeout=60) as uploader:
                resp = uploader.post("/imports", content=body(),
                                     headers={**a, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
                assert resp.status_code == 202, resp.text
                assert resp.json()["file"]["size"] > 48_000_000
                ticket = resp.json()["id"]
                deadline = time.monotonic() + 120
                while uploader.get(f"/imports/{ticket}", headers=a).json()["state"] not in ("completed", "failed"):
                    assert time.monotonic() < deadline, "the 48 MB import did not finish"
                    time.sleep(0.1)
            final = client.get(f"/imports/{ticket}", headers=a).json()
            assert final["state"] == "completed" and final["rows"]["created"] == 48, final
    grew = peak[0] - baseline
    assert grew < 24 * 1024 * 1024, f"the service's process tree grew by {grew / 1e6:.1f} MB for a 48 MB upload"
    assert latencies and max(latencies) < 2.0, max(latencies)
