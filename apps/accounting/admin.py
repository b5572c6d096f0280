"""Admin: the ledger and its documents are read-only here (entries are immutable; corrections are new postings
made by the services). Car park rates and VAT rate periods are the editable accounting settings."""

from django.contrib import admin

from apps.accounting.models import (
    Account,
    AccountingPeriod,
    CarParkRates,
    Invoice,
    LedgerLine,
    LedgerTransaction,
    OverstayCharge,
    Payment,
    VatRate,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LedgerLineInline(admin.TabularInline):
    model = LedgerLine
    fields = ("account", "amount", "vat_rate", "booking", "agent")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "date", "kind", "currency", "memo", "carpark", "created_at")
    list_filter = ("kind", "currency", "date")
    search_fields = ("memo", "booking__reference")
    inlines = [LedgerLineInline]


@admin.register(LedgerLine)
class LedgerLineAdmin(ReadOnlyAdmin):
    list_display = ("transaction", "account", "amount", "vat_rate", "booking", "agent")
    list_filter = ("account",)
    list_select_related = ("transaction", "account", "booking", "agent")
    search_fields = ("booking__reference",)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "description")


@admin.register(AccountingPeriod)
class AccountingPeriodAdmin(ReadOnlyAdmin):
    list_display = ("month", "closed_at", "closed_by")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("booking", "kind", "method", "amount", "currency", "external_reference", "received_at")
    list_filter = ("kind", "method", "currency")
    search_fields = ("booking__reference", "external_reference")


@admin.register(OverstayCharge)
class OverstayChargeAdmin(ReadOnlyAdmin):
    list_display = ("booking", "visit_id", "exited_at", "units", "unit", "rate", "amount")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("number", "kind", "agent", "period", "issued_on", "currency", "total", "line_count", "status")
    list_filter = ("kind", "status", "agent", "currency")
    search_fields = ("number",)


@admin.register(CarParkRates)
class CarParkRatesAdmin(admin.ModelAdmin):
    list_display = ("carpark", "overstay_rate", "overstay_unit")


@admin.register(VatRate)
class VatRateAdmin(admin.ModelAdmin):
    """A rate change is a new period from its first day; postings already made keep the rate they were split at
    (editing a period that has postings changes nothing posted, only what is posted from now on)."""

    list_display = ("carpark", "valid_from", "rate", "note")
    list_filter = ("carpark",)
