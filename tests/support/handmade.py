"""Files made part by part, so any part can be odd or hostile: XLSX zips, OLE2 compound files, lying zips."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RELNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def sheet_xml(rows: str, prefix: str = "", dimension: str = "A1:ZZ99999") -> str:
    """A worksheet part holding these <row> elements (its tags under `prefix` when given)."""
    p = f"{prefix}:" if prefix else ""
    ns = NS.replace("xmlns=", f"xmlns:{prefix}=") if prefix else NS
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {ns}><{p}dimension ref="{dimension}"/>'
        f"<{p}sheetData>{rows}</{p}sheetData></{p}worksheet>"
    )


def inline_row(number: int, *cells: str) -> str:
    """A <row> of inline-string cells."""
    body = "".join(f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{v}</t></is></c>' for i, v in enumerate(cells))
    return f'<row r="{number}">{body}</row>'


def hand_xlsx(
    path: Path,
    sheet: str | bytes,
    *,
    strings: str | None = None,
    styles: str | None = None,
    workbook: str | None = None,
    sheet_part: str = "worksheets/sheet1.xml",
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A minimal workbook with one sheet named "S", written part by part."""
    rels = [f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="{sheet_part}"/>']
    files = {
        "_rels/.rels": f'<Relationships xmlns="{_PACKAGE_RELS}">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": workbook
        or f'<workbook {NS} {RELNS}><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/" + sheet_part.lstrip("/").removeprefix("xl/"): sheet,
    }
    if strings is not None:
        files["xl/sharedStrings.xml"] = strings
        rels.append(f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>')
    if styles is not None:
        files["xl/styles.xml"] = styles
        rels.append(f'<Relationship Id="rId3" Type="{REL}/styles" Target="styles.xml"/>')
    files["xl/_rels/workbook.xml.rels"] = f'<Relationships xmlns="{_PACKAGE_RELS}">' + "".join(rels) + "</Relationships>"
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def lie_about_size(path: Path, part: str, declared: int) -> Path:
    """Rewrite a zip so a part declares `declared` unpacked bytes (local header and directory)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(part)
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(info.filename)] != info.filename.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))
    return path


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file (v3, 512-byte sectors) holding these streams (each padded to 4 KiB)."""
    free, end, fat_sector, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    bodies = [data.ljust(max(4096, -(-len(data) // 512) * 512), b"\0") for data in streams.values()]
    fat = [fat_sector, end]
    starts = []
    for body in bodies:
        starts.append(len(fat))
        sectors = len(body) // 512
        fat += [len(fat) + i + 1 for i in range(sectors - 1)] + [end]
    assert len(fat) <= 128
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(raw), kind, 1, nostream, right, child)
            + b"\0" * 36
            + struct.pack("<II", start, size)
            + b"\0" * 4
        )

    names = list(streams)
    entries = [entry("Root Entry", 5, nostream, 1, end, 0)]
    for i, name in enumerate(names):  # sizes of 4 KiB and up keep streams out of the mini stream
        right = i + 2 if i + 1 < len(names) else nostream
        entries.append(entry(name, 2, right, nostream, starts[i], len(bodies[i])))
    directory = b"".join(entries).ljust(512, b"\0")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", free) * 108
    )
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + directory + b"".join(bodies)


def biff_record(kind: int, body: bytes) -> bytes:
    """One BIFF record: type, length, body."""
    return struct.pack("<HH", kind, len(body)) + body


def biff_cell(kind: int, row: int, col: int, rest: bytes, xf: int = 0) -> bytes:
    """A cell record (LABELSST 0xFD, NUMBER 0x203, RK 0x27E, BOOLERR 0x205, ...): row, column, xf, rest."""
    return biff_record(kind, struct.pack("<HHH", row, col, xf) + rest)


def biff8_stream(cells: bytes, strings: Sequence[str] = (), sheet: str = "S", *, sheet_offset: int | None = None) -> bytes:
    """A BIFF8 workbook stream with one sheet: globals (the sheet's BOUNDSHEET, an SST of `strings`),
    then the sheet's BOF, `cells` (records as they are, odd or not) and EOF."""
    bof = struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0)
    sst = biff_record(0xFC, struct.pack("<ii", len(strings), len(strings)) + b"".join(
        struct.pack("<HB", len(s), 1) + s.encode("utf-16-le") for s in strings))
    name = struct.pack("<BB", len(sheet), 1) + sheet.encode("utf-16-le")
    size = 4 + len(bof) + 4 + 6 + len(name) + len(sst) + 4
    offset = size if sheet_offset is None else sheet_offset
    head = biff_record(0x809, bof) + biff_record(0x85, struct.pack("<IBB", offset, 0, 0) + name) + sst + biff_record(0x0A, b"")
    assert len(head) == size
    sheet_bof = struct.pack("<HHHHII", 0x0600, 0x0010, 0, 0, 0, 0)
    return head + biff_record(0x809, sheet_bof) + cells + biff_record(0x0A, b"")
