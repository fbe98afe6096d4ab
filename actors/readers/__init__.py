"""Format detection and streaming row readers for CSV, XLSX and XLS files."""

from actors.readers.csv_reader import text_codec
from actors.readers.detect import FileFormat, FileInfo, inspect_file, open_file, read_rows
from actors.readers.errors import BadRow, ReaderError

__all__ = ["BadRow", "FileFormat", "FileInfo", "ReaderError", "inspect_file", "open_file", "read_rows", "text_codec"]
