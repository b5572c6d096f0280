"""The three formats, on real MIME built by the standard library and on raw messages imitating mail clients."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.mail import mime
from apps.mail.parsers import Money, ParseFailure, parse_message
from apps.mail.parsers.base import parse_money
from apps.mail.parsers.fixed import is_record
from tests.mail.messages import (
    CSV_HEADER,
    fixed_record,
    forwarded,
    labels_html_table,
    labels_text,
    message,
)


def parse(fmt: str, msg) -> list:
    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    return parse_message(fmt=fmt, raw=raw).actions


# --- labels -----------------------------------------------------------------------------------------------------


def test_labels_plain_text_gives_every_field():
    [a] = parse("labels", message(labels_text()))
    assert (a.action, a.agent_ref, a.carpark_code) == ("new", "SPX-104233", "LHR-T5")
    assert (a.arrival, a.departure) == (datetime(2026, 11, 21, 5, 30), datetime(2026, 11, 28, 22, 15))
    assert (a.customer_name, a.customer_email, a.customer_phone) == (
        "Jane Smith",
        "jane.smith@example.com",
        "07700 900123",
    )
    assert (a.registration, a.make, a.model, a.colour) == ("AB12 CDE", "Ford", "Focus", "Blue")
    assert (a.flight_outbound, a.flight_return) == ("BA0117", "BA0118")
    assert a.price == Money(Decimal("54.99"), "GBP") and a.commission == Money(Decimal("8.25"), "GBP")


@pytest.mark.parametrize("status,action", [("New", "new"), (" AMENDED ", "amend"), ("cancelled", "cancel")])
def test_labels_status_is_matched_without_case_or_spaces(status, action):
    text = labels_text(status=status).replace("Booking Reference:", "  booking reference :")
    [a] = parse("labels", message(text))
    assert (a.action, a.agent_ref) == (action, "SPX-104233")


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1", "windows-1252"])
@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_labels_in_every_charset_and_transfer_encoding(charset, cte):
    [a] = parse("labels", message(labels_text(), charset=charset, cte=cte))
    assert a.price == Money(Decimal("54.99"), "GBP")


@pytest.mark.parametrize("cte", ["quoted-printable", "base64"])
def test_labels_html_only_two_column_table_with_entities(cte):
    [a] = parse("labels", message(html=labels_html_table(), cte=cte))
    assert (a.agent_ref, a.carpark_code, a.arrival) == ("SPX-104233", "LHR-T5", datetime(2026, 11, 21, 5, 30))
    assert a.price == Money(Decimal("54.99"), "GBP")


def test_labels_html_lines_with_br_and_entities():
    html = "<div>" + "<br>".join(labels_text().replace("£", "&#163;").replace("&", "&amp;").splitlines()) + "</div>"
    html = html.replace("&amp;#163;", "&#163;")
    [a] = parse("labels", message(html=html))
    assert a.price.amount == Decimal("54.99") and a.customer_name == "Jane Smith"


def test_labels_multipart_alternative_and_mixed_with_an_attachment():
    msg = message(labels_text(), html=labels_html_table(), attachments=[(b"%PDF-1.4", "application", "pdf", "v.pdf")])
    assert msg.get_content_type() == "multipart/mixed"
    [a] = parse("labels", msg)
    assert a.agent_ref == "SPX-104233"


def test_labels_mangled_plain_alternative_falls_back_to_html():
    plain = "Booking Confirmation\n\nPlease view this message in HTML.\n"
    [a] = parse("labels", message(plain, html=labels_html_table()))
    assert a.agent_ref == "SPX-104233"


def test_labels_crlf_lf_and_bom():
    text = "\ufeff" + labels_text().replace("\n", "\r\n")
    [a] = parse("labels", message(text))
    assert a.action == "new" and a.agent_ref == "SPX-104233"


def test_labels_cancel_needs_only_the_reference():
    [a] = parse("labels", message("Booking Status: Cancelled\nBooking Reference: SPX-9\n"))
    assert (a.action, a.agent_ref) == ("cancel", "SPX-9")


def test_forwarded_message_uses_the_inner_message_and_its_date():
    inner = message(labels_text(ref="FWD-1"), date=datetime(2026, 11, 1, 8, 0, tzinfo=UTC), subject="Booking FWD-1")
    outer = forwarded(inner)
    outer["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    parsed = parse_message(fmt="labels", raw=outer.as_bytes())
    assert parsed.sent_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert [a.agent_ref for a in parsed.actions] == ["FWD-1"]


@pytest.mark.parametrize(
    "text,reason",
    [
        (labels_text().replace("Drop Off Date: 21/11/2026", "Drop Off Date: 31/02/2026"), "unreadable Drop Off"),
        (labels_text().replace("Car Park: LHR-T5\n", ""), "missing car park"),
        (labels_text(status="Pending"), "unknown Booking Status"),
        (labels_text().replace("Booking Reference: SPX-104233\n", ""), "missing Booking Reference"),
        (labels_text(price="about 50 quid"), "unreadable Total Price"),
    ],
)
def test_labels_unusable_message_fails_with_a_clear_reason(text, reason):
    with pytest.raises(ParseFailure, match=reason):
        parse("labels", message(text))


def test_labels_message_without_a_booking_is_ignored():
    assert parse("labels", message("Daily report: 0 bookings today.\nRegards")) == []


# --- hand-written raw messages imitating real clients ----------------------------------------------------------

OUTLOOK_HTML = b"""From: "SkyPark Reservations" <res@skypark.example>\r
To: <skypark@bookings.parkgate.test>\r
Subject: Booking Confirmation SPX-7\r
Date: Thu, 19 Nov 2026 09:12:44 +0000\r
Message-ID: <AM6PR02MB1234.eurprd02.prod.outlook.com>\r
Content-Type: multipart/alternative;\r
\tboundary="_000_AM6PR02MB1234_"\r
MIME-Version: 1.0\r
\r
--_000_AM6PR02MB1234_\r
Content-Type: text/plain; charset="Windows-1252"\r
Content-Transfer-Encoding: quoted-printable\r
\r
Booking Status\r
New\r
Booking Reference\r
SPX-7\r
\r
--_000_AM6PR02MB1234_\r
Content-Type: text/html; charset="Windows-1252"\r
Content-Transfer-Encoding: quoted-printable\r
\r
<html xmlns:o=3D"urn:schemas-microsoft-com:office:office"><head><meta http-e=\r
quiv=3D"Content-Type" content=3D"text/html; charset=3DWindows-1252"><style>=\r
<!-- p.MsoNormal {margin:0cm;} --></style></head><body lang=3D"EN-GB"><div cl=\r
ass=3D"WordSection1"><table class=3D"MsoNormalTable" border=3D"0"><tr><td s=\r
tyle=3D"padding:0"><p class=3D"MsoNormal"><b>Booking Status:</b><o:p></o:p>=\r
</p></td><td><p class=3D"MsoNormal">New<o:p></o:p></p></td></tr>\r
<tr><td><p class=3D"MsoNormal"><b>Booking Reference:</b></p></td><td><p clas=\r
s=3D"MsoNormal">SPX-7</p></td></tr>\r
<tr><td>Car&nbsp;Park:</td><td>LHR-T5</td></tr>\r
<tr><td>Customer Name:</td><td>Ren=E9e O&#39;Brien</td></tr>\r
<tr><td>Drop Off Date:</td><td>21/11/2026</td></tr><tr><td>Drop Off Time:</=\r
td><td>05:30</td></tr><tr><td>Return Date:</td><td>28/11/2026</td></tr><tr>=\r
<td>Return Time:</td><td>22:15</td></tr><tr><td>Registration:</td><td>AB12 C=\r
DE</td></tr><tr><td>Total Price:</td><td>=A354.99</td></tr></table></div></b=\r
ody></html>\r
\r
--_000_AM6PR02MB1234_--\r
"""


def test_outlook_html_table_with_windows_1252_pound_and_qp_soft_breaks():
    [a] = parse("labels", OUTLOOK_HTML)
    assert (a.action, a.agent_ref, a.carpark_code) == ("new", "SPX-7", "LHR-T5")
    assert a.customer_name == "Renée O'Brien"
    assert a.registration == "AB12 CDE" and a.price == Money(Decimal("54.99"), "GBP")
    assert a.departure == datetime(2026, 11, 28, 22, 15)


LATIN1_LF = (
    b"From: agent@old.example\nSubject: booking\nMIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
    + labels_text(price="\xa354.99").replace("£", "\xa3").encode("latin-1")
)


def test_raw_latin1_8bit_with_bare_lf_line_ends():
    [a] = parse("labels", LATIN1_LF)
    assert a.price == Money(Decimal("54.99"), "GBP") and a.agent_ref == "SPX-104233"


def test_undeclared_charset_windows_1252_is_read():
    raw = b"Subject: x\r\n\r\n" + labels_text(price="\x80 is not ours, \xa354.99").encode("latin-1")
    with pytest.raises(ParseFailure, match="Total Price"):
        parse("labels", raw)
    raw = b"Subject: x\r\n\r\n" + labels_text().replace("£", "\xa3").encode("latin-1")
    [a] = parse("labels", raw)
    assert a.price.amount == Decimal("54.99")


# --- money ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [
        ("£54.99", Money(Decimal("54.99"), "GBP")),
        ("GBP 54.99", Money(Decimal("54.99"), "GBP")),
        ("54.99", Money(Decimal("54.99"), None)),
        ("54.99 GBP", Money(Decimal("54.99"), "GBP")),
        ("£1,054.50", Money(Decimal("1054.50"), "GBP")),
        ("€12", Money(Decimal("12"), "EUR")),
        ("", None),
    ],
)
def test_money_with_sign_code_or_nothing(value, expected):
    assert parse_money(value, "price") == expected


@pytest.mark.parametrize("value", ["£", "-5.00", "54.999", "£ GBP 5", "5,4.00", "fifty"])
def test_money_refuses_what_it_cannot_read(value):
    with pytest.raises(ValueError):
        parse_money(value, "price")


# --- csv -----------------------------------------------------------------------------------------------------

CSV_BODY = CSV_HEADER + (
    "NEW,HX-88121,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,Jane Smith,jane@example.com,,AB12CDE,54.99,8.25\n"
    'amend , HX-88122 ,LHR-T5,2026-11-22 06:00,2026-11-29 21:00,"Smith, John",,"07700 900124",CD34EFG,£60.00,\n'
    "CANCEL,HX-87002,,,,,,,,,\n"
)


@pytest.mark.parametrize(
    "maintype,subtype,filename",
    [("text", "csv", "bookings.csv"), ("application", "octet-stream", "EXPORT.CSV"), ("text", "csv", None)],
)
def test_csv_attachment_rows(maintype, subtype, filename):
    data = CSV_BODY.encode()
    msg = message("Bookings attached.", attachments=[(data, maintype, subtype, filename)])
    rows = parse("csv", msg)
    assert [(r.row, r.action, r.agent_ref) for r in rows] == [
        (1, "new", "HX-88121"),
        (2, "amend", "HX-88122"),
        (3, "cancel", "HX-87002"),
    ]
    assert rows[1].customer_name == "Smith, John" and rows[1].customer_phone == "07700 900124"
    assert rows[1].price == Money(Decimal("60.00"), "GBP") and rows[1].commission is None
    assert rows[0].arrival == datetime(2026, 11, 21, 5, 30) and not any(r.error for r in rows)


def test_csv_crlf_bom_windows_1252_and_header_case():
    text = CSV_BODY.replace("action,agent_ref", " ACTION , Agent_Ref ").replace("Jane", "Zoë").replace("\n", "\r\n")
    for data in (text.encode("cp1252"), text.encode("utf-8-sig")):
        msg = message("x", attachments=[(data, "application", "octet-stream", "b.csv")])
        rows = parse("csv", msg)
        assert rows[0].customer_name == "Zoë Smith" and len(rows) == 3


def test_csv_bad_rows_are_reported_per_row_and_good_rows_kept():
    body = CSV_HEADER + (
        "NEW,HX-1,LHR-T5,2026-13-01 05:30,2026-11-28 22:15,A B,,,AB12CDE,,\n"
        "FROB,HX-2,,,,,,,,,\n"
        "NEW,,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,A B,,,AB12CDE,,\n"
        "NEW,HX-4,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,,,,AB12CDE,,\n"
        "NEW,HX-5,LHR-T5,2026-11-21 05:30,2026-11-28 22:15,A B,,,AB12CDE,,\n"
    )
    rows = parse("csv", message("x", attachments=[(body.encode(), "text", "csv", "b.csv")]))
    assert [bool(r.error) for r in rows] == [True, True, True, True, False]
    assert "unreadable arrival" in rows[0].error and "unknown action" in rows[1].error
    assert "agent_ref" in rows[2].error and "customer name" in rows[3].error


def test_csv_without_attachment_or_without_rows_is_ignored():
    assert parse("csv", message("no attachment today")) == []
    assert parse("csv", message("x", attachments=[(CSV_HEADER.encode(), "text", "csv", "empty.csv")])) == []


def test_csv_header_without_required_columns_fails():
    with pytest.raises(ParseFailure, match="agent_ref"):
        parse("csv", message("x", attachments=[(b"action,ref\nNEW,1\n", "text", "csv", "b.csv")]))


# --- fixed ---------------------------------------------------------------------------------------------------


def test_fixed_records_among_headers_and_trailers():
    body = "\n".join(
        [
            "LEGACY80 RESERVATIONS - DAILY TRANSMISSION 21/11/2026",
            "",
            fixed_record("N", "L80-000001"),
            fixed_record("A", "L80/000002", carpark="MAN-T2", name="O'BRIEN/RENEE"),
            "C" + "L80-000003",
            "Nothing else to report",
            "N" + "bad ref here" + " " * 8 + "X" * 24,
            "END OF TRANSMISSION 3 RECORDS",
        ]
    )
    rows = parse("fixed", message(body))
    assert [(r.action, r.agent_ref) for r in rows] == [
        ("new", "L80-000001"),
        ("amend", "L80/000002"),
        ("cancel", "L80-000003"),
    ]
    assert (
        rows[0].carpark_code == "LHR-T5" and rows[0].registration == "AB12CDE" and rows[0].customer_name == "SMITH/JANE"
    )
    assert rows[0].arrival == datetime(2026, 11, 21, 5, 30) and rows[1].carpark_code == "MAN-T2"


def test_fixed_record_detection_rules():
    full = fixed_record().ljust(80)
    assert is_record(full)
    assert is_record(("C" + "L80-1").ljust(80))  # cancel: only the reference
    assert is_record("C" + full[1:])  # a full cancel record counts too (only the reference is used)
    assert not is_record(("N" + "L80-1").ljust(80))  # new needs columns 22-45 all digits
    assert not is_record(" " + full[1:])  # column 1 must be N, A or C
    assert not is_record("N" + " L80-1      " + full[13:])  # reference left aligned
    assert not is_record("N" + "L80 1       " + full[13:])  # reference then only spaces
    assert not is_record(full[:21] + "2026112105X0" + full[33:])
    assert not is_record(("C" + "L80-1").ljust(79) + "x")  # cancel without digits: all blank after col 13


def test_fixed_crlf_and_html_pre_body():
    body = "\r\n".join([fixed_record("N", "L80-9"), fixed_record("C", "L80-8")])
    html = f"<html><body><pre>{body}</pre></body></html>"
    rows = parse("fixed", message(html=html))
    assert [(r.action, r.agent_ref) for r in rows] == [("new", "L80-9"), ("cancel", "L80-8")]


def test_fixed_unreadable_date_is_a_row_error():
    rows = parse("fixed", message(fixed_record(arrival="202613210530")))
    assert rows[0].error.startswith("unreadable arrival")


def test_fixed_without_records_is_ignored():
    assert parse("fixed", message("HEADER\nTRAILER 0 RECORDS\n")) == []


# --- mime helpers --------------------------------------------------------------------------------------------


def test_date_without_zone_or_unreadable():
    assert mime.sent_at(mime.parse_bytes(b"Date: Sat, 21 Nov 2026 10:00:00 -0000\n\nx")) == datetime(
        2026, 11, 21, 10, tzinfo=UTC
    )
    assert mime.sent_at(mime.parse_bytes(b"Date: yesterday-ish\n\nx")) is None
    assert mime.sent_at(mime.parse_bytes(b"Subject: none\n\nx")) is None


def test_html_renderer_skips_style_and_script():
    text = mime.html_to_text("<style>p{}</style><script>x=1</script><p>Car Park: <b>LHR&#45;T5</b></p>")
    assert text == "Car Park: LHR-T5"
