"""Text encodings through HTTP: UTF-8 with or without BOM by default, latin-1, cp1252 and utf-16 when
named; bytes not valid in the encoding are refused naming the line and the byte."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest

from tests.support import Harness, native_auth

TEXT = "email,name,age\r\na@example.com,Zoë Ærø,1\r\nb@example.com,Bo,2\r\n"
EURO = "email,name,age\r\na@example.com,€ 5 – Zoë,1\r\nb@example.com,Bo,2\r\n"
# A big head pushes the bad byte past what submission reads (64 KiB): the ticket fails instead.
HEAD = "email,name,age\r\n" + "".join(f"u{i}@example.com,U{i},{i % 90}\r\n" for i in range(5000))

READABLE = {
    "utf-8": (None, TEXT.encode(), "Zoë Ærø"),
    "utf-8 with BOM": (None, codecs.BOM_UTF8 + TEXT.encode(), "Zoë Ærø"),
    "latin-1": ("latin-1", TEXT.encode("latin-1"), "Zoë Ærø"),
    "cp1252": ("cp1252", EURO.encode("cp1252"), "€ 5 – Zoë"),
    "utf-16 little-endian": ("utf-16", codecs.BOM_UTF16_LE + EURO.encode("utf-16-le"), "€ 5 – Zoë"),
    "utf-16 big-endian": ("utf-16", codecs.BOM_UTF16_BE + EURO.encode("utf-16-be"), "€ 5 – Zoë"),
    "utf-16 by its BOM alone": (None, codecs.BOM_UTF16_BE + EURO.encode("utf-16-be"), "€ 5 – Zoë"),
}


SHORT = "email,name,age\r\na@example.com,A,1\r\n"
INVALID = {  # the encoding named (None: the default), the bad byte
    "utf-8": (None, 0xFF),
    "cp1252": ("cp1252", 0x81),
    "utf-16": ("utf-16", 0xD8),
}


def _invalid(case: str, head: str) -> tuple[bytes, int]:
    """The head's rows, then a row whose name holds the case's bad byte; and that row's line."""
    encoding, byte = INVALID[case]
    if case == "utf-16":  # UTF-16-BE with a lone high surrogate (0xd8 0x00)
        bad = "z@example.com,Z".encode("utf-16-be") + b"\xd8\x00" + ",1\r\n".encode("utf-16-be")
        data = codecs.BOM_UTF16_BE + head.encode("utf-16-be") + bad
    else:
        data = head.encode(encoding or "utf-8") + b"z@example.com,Z" + bytes([byte]) + b",1\r\n"
    return data, head.count("\r\n") + 1


def _upload(h: Harness, auth: dict[str, str], tmp_path: Path, data: bytes, encoding: str | None) -> Any:
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    fields = {"dataset": "contacts", **({"encoding": encoding} if encoding else {})}
    with path.open("rb") as fh:
        return h.client.post("/imports", data=fields, files={"file": (path.name, fh, "text/csv")}, headers=auth)


@pytest.mark.parametrize("case", list(READABLE))
def test_a_file_in_a_supported_encoding_imports_its_text_exactly(embedded: Harness, tmp_path: Path, case: str) -> None:
    encoding, data, name = READABLE[case]
    auth = native_auth(embedded)
    resp = _upload(embedded, auth, tmp_path, data, encoding)
    assert resp.status_code == 202, resp.text
    view = embedded.wait(resp.json()["id"])
    assert view.state == "completed" and view.created == 2, view.reason
    records = embedded.records("acme")
    assert records['["a@example.com"]']["name"] == name and records['["b@example.com"]']["name"] == "Bo"


@pytest.mark.parametrize("case", list(INVALID))
@pytest.mark.parametrize("where", ["start", "past the start"])
def test_an_invalid_byte_is_refused_naming_line_and_byte(embedded: Harness, tmp_path: Path, case: str, where: str) -> None:
    """In the start of the upload (what submission reads) a 400; further on, a failed ticket."""
    encoding, byte = INVALID[case]
    data, line = _invalid(case, SHORT if where == "start" else HEAD)
    auth = native_auth(embedded)
    resp = _upload(embedded, auth, tmp_path, data, encoding)
    named = f"(byte 0x{byte:02x} at line {line})"
    if where == "start":
        assert resp.status_code == 400 and line == 3, resp.text
        error = resp.json()["error"]
        assert error["code"] == "invalid_file" and named in error["message"], error
        return
    assert resp.status_code == 202, resp.text
    view = embedded.wait(resp.json()["id"])
    assert view.state == "failed" and named in (view.reason or ""), view.reason
    status = embedded.client.get(f"/imports/{view.ticket}", headers=auth).json()
    assert line == 5002 and named in status["error"], status


def test_utf16_named_without_a_byte_order_mark_is_a_400_saying_which_to_name(embedded: Harness, tmp_path: Path) -> None:
    auth = native_auth(embedded)
    resp = _upload(embedded, auth, tmp_path, TEXT.encode("utf-16-le"), "utf-16")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["message"] == (
        "file does not start with a UTF-16 byte-order mark; pass encoding=utf-16-le or utf-16-be"
    )


@pytest.mark.parametrize("given", ["klingon", "hex"])
def test_an_encoding_that_is_no_text_encoding_is_a_400_at_submission_for_uploads_and_uris(
    embedded: Harness, tmp_path: Path, given: str
) -> None:
    auth = native_auth(embedded)
    for resp in (
        embedded.client.post(
            "/imports", json={"dataset": "contacts", "uri": "http://127.0.0.1:9/a.csv", "encoding": given}, headers=auth
        ),
        _upload(embedded, auth, tmp_path, TEXT.encode(), given),
    ):
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["field"] == "encoding" and error["message"].startswith(f"unknown text encoding {given!r}")
