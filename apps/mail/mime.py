"""Reading agents' messages with the standard library's email package (policy.default), tolerating what real mail
systems do: forwarded messages, any common charset, a UTF-8 BOM, HTML-only bodies, broken headers.

Every function here takes a parsed message and never raises on odd input: it returns what it can read.
"""

import codecs
import contextlib
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

# Charsets that mail clients declare for text actually written in Windows-1252 (as browsers do, WHATWG).
_WINDOWS_1252_ALIASES = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "cp819"}


# A booking message has a handful of parts. Past these limits it is an attack or a broken system, and parsing it
# whole would cost the worker seconds of CPU per message, and our recursive walks their stack.
MAX_PARTS = 200
MAX_DEPTH = 20


class MessageTooComplex(ValueError):
    """More MIME parts or deeper nesting than a booking message has; str(exc) says which, for staff."""


def parse_bytes(raw: bytes) -> EmailMessage:
    """The parsed message. Raises MessageTooComplex as soon as the parser makes part MAX_PARTS + 1, before the
    rest is parsed, or when parts nest deeper than MAX_DEPTH."""
    made = 0

    def part_factory(*args, **kwargs) -> EmailMessage:
        nonlocal made
        made += 1
        if made > MAX_PARTS + 1:  # +1: the parser makes one probe instance when it starts
            raise MessageTooComplex(f"more than {MAX_PARTS} MIME parts")
        return EmailMessage(*args, **kwargs)

    msg = BytesParser(part_factory, policy=policy.default).parsebytes(raw)
    if _depth(msg) > MAX_DEPTH:
        raise MessageTooComplex(f"MIME parts nested more than {MAX_DEPTH} deep")
    return msg


def _depth(msg: Message) -> int:
    """How deep parts nest (a single-part message: 1), without recursion."""
    deepest, stack = 0, [(msg, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((sub, depth + 1) for sub in payload if isinstance(sub, Message))
    return deepest


def booking_message(msg: Message, depth: int = 0) -> Message:
    """The message that carries the bookings: the forwarded one (attached as message/rfc822) if there is one."""
    if depth > 5:
        return msg
    for part in _walk(msg):
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                return booking_message(inner, depth + 1)
    return msg


def sent_at(msg: Message) -> datetime | None:
    """The Date header as an aware datetime (UTC when the header gives no zone); None if absent or unreadable."""
    try:
        value = msg.get("Date")
    except Exception:  # a header policy.default cannot parse
        return None
    if not value:
        return None
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def text_bodies(msg: Message) -> list[str]:
    """The message's readable texts, plain first, then HTML rendered to lines (tables as tab-separated cells).

    Attachments are skipped; multipart/alternative and multipart/mixed are walked in order.
    """
    plain, html = [], []
    for part in _walk(msg):
        if part.is_multipart() or _is_attachment(part):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain":
            plain.append(decode_text(part))
        elif ctype == "text/html":
            html.append(html_to_text(decode_text(part)))
    return [t for t in plain + html if t.strip()]


def attachments(msg: Message) -> list[tuple[str, str, Message]]:
    """(content type, file name, part) of each non-multipart part that is an attachment or has a file name."""
    found = []
    for part in _walk(msg):
        if part.is_multipart():
            continue
        name = _filename(part)
        if name or _is_attachment(part):
            found.append((part.get_content_type(), name, part))
    return found


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared (or undeclared) charset -> text. UTF-8 BOM and NUL characters dropped; never raises."""
    return _decode_bytes(data, charset).replace("\x00", "")


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    declared = (charset or "").strip().lower()
    candidates = []
    if declared in _WINDOWS_1252_ALIASES:
        candidates = ["cp1252", "latin-1"] if declared not in ("us-ascii", "ascii") else ["utf-8", "cp1252"]
    elif declared:
        candidates = [declared, "utf-8", "cp1252"]
    else:
        candidates = ["utf-8", "cp1252"]
    for name in candidates:
        try:
            return data.decode(name).lstrip("\ufeff")
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")


def decode_text(part: Message) -> str:
    """A text part's content: transfer encoding (QP, base64) undone, charset decoded, line ends normalised."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else b""
    charset = None
    with contextlib.suppress(Exception):
        charset = part.get_content_charset()
    return normalise_newlines(decode_bytes(data, charset))


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _walk(msg: Message):
    """msg.walk(), but not into forwarded messages (booking_message handles those) and never failing."""
    yield msg
    if msg.get_content_type() == "message/rfc822" or not msg.is_multipart():
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from _walk(sub)


def _filename(part: Message) -> str:
    try:
        return (part.get_filename() or "").strip()
    except Exception:
        return ""


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment"
    except Exception:
        return False


# --- HTML ------------------------------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p", "div", "br", "tr", "table", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "blockquote", "hr", "dl", "dt", "dd", "section", "article", "header", "footer", "tbody", "thead",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "head", "title"}
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u3000]+")


class _TextRenderer(HTMLParser):
    """HTML -> lines of text. A table row becomes one line with its cells separated by tabs, so that a
    two-column table (`<tr><td>Label</td><td>value</td></tr>`) reads as "Label<TAB>value"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.cells: list[str] | None = None
        self.cell: list[str] | None = None
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "tr":
            self._break()
            self.cells = []
        elif tag in ("td", "th"):
            self._end_cell()
            self.cell = []
        elif tag == "pre":
            self._break()
            self.pre += 1
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()
        elif tag == "pre":
            self._break()
            self.pre = max(0, self.pre - 1)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self._break()
        else:
            self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre and self.cell is None:
            chunks = data.split("\n")
            self.current.append(chunks[0])
            for chunk in chunks[1:]:
                self._flush()
                self.current.append(chunk)
            return
        data = data.replace("\n", " ").replace("\r", " ")
        (self.cell if self.cell is not None else self.current).append(data)

    def _end_cell(self):
        if self.cell is not None:
            text = _SPACES.sub(" ", "".join(self.cell)).strip()
            if self.cells is None:
                self.current.append(text)
            else:
                self.cells.append(text)
            self.cell = None

    def _end_row(self):
        self._end_cell()
        if self.cells is not None:
            cells = self.cells
            self.cells = None
            if any(cells):
                self.lines.append("\t".join(cells))

    def _break(self):
        if self.cell is not None:  # a <br> or <p> inside a cell: keep the cell on one line
            self.cell.append(" ")
            return
        self._flush()

    def _flush(self):
        text = "".join(self.current)
        self.current = []
        if self.pre:
            self.lines.append(text.replace("\u00a0", " "))
        else:
            text = _SPACES.sub(" ", text).strip()
            if text:
                self.lines.append(text)

    def close(self):
        super().close()
        self._end_row()
        self._flush()


def html_to_text(html: str) -> str:
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
    except Exception:  # html.parser is lenient; this guards against the odd AssertionError on broken markup
        renderer._flush()
    return "\n".join(renderer.lines)
