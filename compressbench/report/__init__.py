"""Reports: tables (pandas -> rich / Markdown / CSV / JSON), atomic output."""

from compressbench.files import check_writable, write_atomic
from compressbench.report.render import FORMATS, Section, check_format, render, render_json, render_markdown

__all__ = ["FORMATS", "Section", "check_format", "check_writable", "render", "render_json", "render_markdown", "write_atomic"]
