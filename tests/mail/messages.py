"""Builders of real MIME messages (standard library) in the agents' three formats, for the mail tests."""

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

LABELS = """Booking Status: {status}
Booking Reference: {ref}
Car Park: {carpark}
Customer Name: Jane Smith
Email: jane.smith@example.com
Mobile: 07700 900123
Drop Off Date: 21/11/2026
Drop Off Time: 05:30
Return Date: 28/11/2026
Return Time: 22:15
Outbound Flight: BA0117
Return Flight: BA0118
Registration: {plate}
Make: Ford
Model: Focus
Colour: Blue
Total Price: {price}
Commission: £8.25
"""

CSV_HEADER = "action,agent_ref,carpark,arrival,departure,name,email,phone,registration,price,commission\n"


def labels_text(ref="SPX-104233", status="New", carpark="LHR-T5", plate="AB12 CDE", price="£54.99") -> str:
    return LABELS.format(ref=ref, status=status, carpark=carpark, plate=plate, price=price)


def labels_html_table(ref="SPX-104233", status="New", carpark="LHR-T5", plate="AB12 CDE") -> str:
    rows = [line.split(": ", 1) for line in labels_text(ref, status, carpark, plate).strip().splitlines()]
    cells = "".join(
        f"<tr><td><b>{label}</b></td><td>{value.replace('£', '&pound;')}</td></tr>\n" for label, value in rows
    )
    return f"<html><head><style>td {{ color: red }}</style></head><body><table>{cells}</table></body></html>"


def fixed_record(action="N", ref="L80-000001", carpark="LHR-T5", arrival="202611210530",
                 departure="202611282215", plate="AB12CDE", name="SMITH/JANE") -> str:  # fmt: skip
    line = f"{action}{ref:<12}{carpark:<8}{arrival:<12}{departure:<12}{plate:<10}{name:<25}"
    assert len(line) == 80, len(line)
    return line.rstrip()


def message(
    body: str = "",
    *,
    subject: str = "Booking",
    html: str | None = None,
    date: datetime | None = None,
    charset: str = "utf-8",
    cte: str | None = None,
    message_id: str | None = None,
    attachments: list[tuple[bytes, str, str, str]] = (),
) -> EmailMessage:
    """A message as a mail client would build it: text (and HTML alternative), optional attachments
    given as (data, maintype, subtype, filename)."""
    msg = EmailMessage()
    msg["From"] = "bookings@agent.example"
    msg["To"] = "agent@bookings.parkgate.test"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="agent.example")
    if date is not None:
        msg["Date"] = format_datetime(date)
    if html is None or body:
        msg.set_content(body, charset=charset, cte=cte)
        if html is not None:
            msg.add_alternative(html, subtype="html", charset=charset, cte=cte)
    else:
        msg.set_content(html, subtype="html", charset=charset, cte=cte)
    for data, maintype, subtype, filename in attachments:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def forwarded(inner: EmailMessage, note: str = "FYI, see the booking below.") -> EmailMessage:
    outer = EmailMessage()
    outer["From"] = "ops@agent.example"
    outer["To"] = "agent@bookings.parkgate.test"
    outer["Subject"] = "Fwd: " + str(inner["Subject"])
    outer["Message-ID"] = make_msgid(domain="agent.example")
    outer.set_content(note)
    outer.add_attachment(inner)  # message/rfc822
    return outer
