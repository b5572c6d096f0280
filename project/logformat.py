"""The log formatter every handler uses (settings.LOGGING): clients' text (firmware strings, mail subjects and
addresses, plates) reaches log messages, and a newline or a terminal escape in it would forge a log line or drive the
operator's terminal. Control characters are written as Python escapes (\\n, \\x1b); a traceback keeps its own line
breaks and loses the rest."""

import logging

# C0 and C1 controls, DEL, and Unicode's line and paragraph separators.
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_ESCAPES = {c: repr(chr(c))[1:-1] if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPES_KEEP_NEWLINES = {c: e for c, e in _ESCAPES.items() if c != ord("\n")}


class EscapingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_ESCAPES)

    def formatException(self, ei) -> str:
        return super().formatException(ei).translate(_ESCAPES_KEEP_NEWLINES)

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info).translate(_ESCAPES_KEEP_NEWLINES)
