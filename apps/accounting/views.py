"""Accountants' pages: trial balance, ledger by account and period, agents' statements, invoices (printable and
CSV), period close; and the booking page where staff record payments.

Thin async views: parse, authorise (permissions.py), call a selector or service through `run_sync`, reply.
Large exports (an invoice of 50,000 lines, a month of an account) stream in chunks of one short query each.
"""

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounting import forms, permissions, selectors, services, vat
from apps.accounting.invoices import agent_invoices_generate, invoice_mark_paid, month_end
from apps.accounting.ledger import month_start
from apps.accounting.models import Account, Invoice
from apps.core.concurrency import run_sync

CHUNK = 2000


def accountant_required(view):
    """Login required, then the accountant role (or superuser); others get 403."""

    @login_required
    async def wrapped(request, *args, **kwargs):
        user = await request.auser()
        allowed = await run_sync(permissions.is_accountant, user_id=user.pk, is_superuser=user.is_superuser)
        if not allowed:
            return HttpResponseForbidden("Accounting is for accountants.")
        request.accountant = user
        return await view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


def _month_param(request) -> date:
    try:
        year, month = request.GET.get("month", "").split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        return month_start(timezone.localdate())


def _range(request) -> tuple[date, date]:
    form = forms.RangeForm(request.GET)
    today = timezone.localdate()
    start = end = None
    if form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    start = start or month_start(today)
    return start, end or max(today, start)


def _page(request, template: str, context: dict):
    # `user` given explicitly: templates must not touch the lazy request.user (a sync query) in async code.
    return render(request, template, {"user": request.accountant, **context})


async def _csv_rows(header: list[str], fetch: Callable[[int], list[dict]], row: Callable[[dict], list]):
    """CSV text in chunks: `fetch(after_pk)` returns the next rows (keyset pagination) until empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    after = 0
    while True:
        chunk = await run_sync(fetch, after)
        if not chunk:
            break
        for item in chunk:
            writer.writerow(row(item))
        after = chunk[-1]["pk"]
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def _csv_response(body: AsyncIterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Overview and trial balance ---------------------------------------------------------------------------------


@require_GET
@accountant_required
async def home(request):
    month = _month_param(request)
    tb = await run_sync(selectors.trial_balance, until=month_end(month))
    return _page(
        request,
        "accounting/home.html",
        {
            "month": month,
            "tb": tb,
            "totals": sorted(tb.totals().items()),
            "accounts": await run_sync(selectors.accounts),
            "periods": await run_sync(selectors.periods),
            "agents": await run_sync(selectors.agents),
        },
    )


@require_GET
@accountant_required
async def trial_balance_csv(request):
    month = _month_param(request)
    tb = await run_sync(selectors.trial_balance, until=month_end(month))

    async def body():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["account", "name", "currency", "debits", "credits", "balance"])
        for r in tb.rows:
            writer.writerow([r.code, r.name, r.currency, r.debits, r.credits, r.balance])
        yield buffer.getvalue()

    return _csv_response(body(), f"trial-balance-{month:%Y-%m}.csv")


# --- Ledger by account and period -------------------------------------------------------------------------------


@require_GET
@accountant_required
async def account_ledger(request, code: str):
    start, end = _range(request)
    try:
        ledger = await run_sync(selectors.account_ledger, code=code, start=start, end=end)
    except Account.DoesNotExist:
        raise Http404("no such account") from None
    return _page(request, "accounting/ledger.html", {"ledger": ledger, "start": start, "end": end, "code": code})


@require_GET
@accountant_required
async def account_ledger_csv(request, code: str):
    start, end = _range(request)

    def fetch(after: int) -> list[dict]:
        return selectors.account_line_chunk(code=code, start=start, end=end, after_pk=after, limit=CHUNK)

    def row(r: dict) -> list:
        debit, credit = (r["amount"], "") if r["amount"] > 0 else ("", -r["amount"])
        return [
            r["transaction__date"],
            r["transaction_id"],
            r["transaction__kind"],
            r["transaction__currency"],
            debit,
            credit,
            r["booking__reference"] or "",
            r["agent__code"] or "",
            r["transaction__memo"],
        ]

    header = ["date", "transaction", "kind", "currency", "debit", "credit", "booking", "agent", "memo"]
    return _csv_response(_csv_rows(header, fetch, row), f"ledger-{code}-{start}-{end}.csv")


# --- Agents -----------------------------------------------------------------------------------------------------


async def _agent_statement_or_404(request, agent_id: int) -> tuple[dict, date, date]:
    start, end = _range(request)
    try:
        statement = await run_sync(selectors.agent_statement, agent_id=agent_id, start=start, end=end)
    except ObjectDoesNotExist:
        raise Http404("no such agent") from None
    return statement, start, end


@require_GET
@accountant_required
async def agent_statement(request, agent_id: int):
    statement, start, end = await _agent_statement_or_404(request, agent_id)
    return _page(request, "accounting/agent_statement.html", {"s": statement, "start": start, "end": end})


@require_GET
@accountant_required
async def agent_statement_csv(request, agent_id: int):
    statement, start, end = await _agent_statement_or_404(request, agent_id)

    async def body():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        fields = selectors.STATEMENT_INVOICE_FIELDS
        writer.writerow(fields)
        for invoice in statement["invoices"]:
            writer.writerow([invoice[f] if invoice[f] is not None else "" for f in fields])
        yield buffer.getvalue()

    return _csv_response(body(), f"statement-{statement['agent']['code']}-{start}-{end}.csv")


# --- Invoices ---------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@accountant_required
async def invoices(request):
    form = forms.InvoiceRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        month, agent_id = form.cleaned_data["month"], form.cleaned_data["agent"]
        agent_ids = [agent_id] if agent_id else await run_sync(selectors.agent_ids_to_invoice)
        issued = []
        try:
            for aid in agent_ids:
                issued += await run_sync(agent_invoices_generate, agent_id=aid, month=month)
        except services.PostingError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{len(issued)} document(s) issued for {month:%Y-%m}.")
        return redirect("accounting:invoices")
    agent_id = request.GET.get("agent")
    rows = await run_sync(selectors.invoices, agent_id=int(agent_id) if (agent_id or "").isdigit() else None)
    return _page(
        request,
        "accounting/invoices.html",
        {"invoices": rows, "form": form, "agents": await run_sync(selectors.agents)},
    )


async def _invoice_or_404(invoice_id: int) -> dict:
    try:
        return await run_sync(selectors.invoice_detail, invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        raise Http404("no such invoice") from None


@require_GET
@accountant_required
async def invoice_print(request, invoice_id: int):
    """The printable invoice, streamed: head, one table row per line (in chunks), foot."""
    invoice = await _invoice_or_404(invoice_id)
    head = render_to_string("accounting/invoice_head.html", {"invoice": invoice}, request=request)
    foot = render_to_string("accounting/invoice_foot.html", {"invoice": invoice}, request=request)

    async def body():
        yield head
        after = 0
        while chunk := await run_sync(selectors.invoice_line_chunk, invoice_id=invoice_id, after_pk=after, limit=CHUNK):
            yield "".join(
                format_html(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{}%</td><td class=n>{}</td><td class=n>{}</td>"
                    "<td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
                    line["reference"],
                    line["agent_ref"],
                    line["description"],
                    vat.percent(line["vat_rate"]),
                    line["price"] - line["price_vat"],
                    line["price_vat"],
                    line["price"],
                    line["commission"],
                    line["commission_vat"],
                    line["amount"],
                )
                for line in chunk
            )
            after = chunk[-1]["pk"]
        yield foot

    return StreamingHttpResponse(body(), content_type="text/html; charset=utf-8")


@require_GET
@accountant_required
async def invoice_csv(request, invoice_id: int):
    invoice = await _invoice_or_404(invoice_id)

    def fetch(after: int) -> list[dict]:
        return selectors.invoice_line_chunk(invoice_id=invoice_id, after_pk=after, limit=CHUNK)

    def row(r: dict) -> list:
        return [
            invoice["number"],
            r["reference"],
            r["agent_ref"],
            r["description"],
            r["price"],
            r["commission"],
            r["amount"],
            invoice["currency"],
            r["vat_rate"],
            r["price"] - r["price_vat"],
            r["price_vat"],
            r["commission"] - r["commission_vat"],
            r["commission_vat"],
        ]

    header = ["invoice", "booking", "agent_ref", "description", "price", "commission", "amount", "currency"]
    header += ["vat_rate", "price_net", "price_vat", "commission_net", "commission_vat"]
    return _csv_response(_csv_rows(header, fetch, row), f"{invoice['number']}.csv")


@require_POST
@accountant_required
async def invoice_paid(request, invoice_id: int):
    await _invoice_or_404(invoice_id)
    try:
        invoice = await run_sync(invoice_mark_paid, invoice_id=invoice_id, actor=request.accountant)
        messages.success(request, f"{invoice.number} marked paid.")
    except services.PostingError as exc:
        messages.error(request, str(exc))
    return redirect("accounting:invoices")


# --- VAT return -------------------------------------------------------------------------------------------------


@require_GET
@accountant_required
async def vat_return(request):
    """A quarter's output VAT, input VAT on commissions and net due (?quarter=YYYY-Qn, or ?start=&end=)."""
    quarter = request.GET.get("quarter") or vat.quarter_of(timezone.localdate())
    try:
        start, end = vat.quarter_parse(quarter)
    except ValueError:
        raise Http404("not a quarter (YYYY-Qn)") from None
    if request.GET.get("start") or request.GET.get("end"):
        start, end = _range(request)
        quarter = ""
    summary = await run_sync(vat.vat_summary, start=start, end=end)
    return _page(request, "accounting/vat.html", {"s": summary, "quarter": quarter})


# --- Periods ----------------------------------------------------------------------------------------------------


@require_POST
@accountant_required
async def period(request):
    form = forms.PeriodForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a month as YYYY-MM.")
        return redirect("accounting:home")
    month, action = form.cleaned_data["month"], form.cleaned_data["action"]
    service = services.period_close if action == "close" else services.period_reopen
    await run_sync(service, month=month, actor=request.accountant)
    messages.success(request, f"{month:%Y-%m} {'closed' if action == 'close' else 'reopened'}.")
    return redirect("accounting:home")


# --- A booking's account and its payments (staff) ---------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
async def booking_account(request, reference: str):
    user = await request.auser()
    booking_id = await run_sync(selectors.booking_id_by_reference, reference)
    if booking_id is None:
        raise Http404("no such booking")
    statement = await run_sync(selectors.booking_statement, booking_id=booking_id)
    allowed = await run_sync(
        permissions.may_record_payment,
        user_id=user.pk,
        carpark_id=statement["booking"]["carpark_id"],
        is_superuser=user.is_superuser,
    )
    if not allowed:
        raise Http404("no such booking")  # like the dashboard: nothing about other car parks' bookings
    form = forms.PaymentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            await run_sync(
                services.payment_record,
                booking_id=booking_id,
                recorded_by=user,
                **form.cleaned_data,
            )
        except services.PostingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Payment recorded.")
            return redirect("accounting:booking", reference=statement["booking"]["reference"])
    return render(request, "accounting/booking.html", {"user": user, "s": statement, "form": form})
