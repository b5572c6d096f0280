"""Access control's writes (lane controllers, visits, barrier commands, alerts and the offline allow-list;
device-protocol.md), one module per concern. Every function owns its transaction.

Callers import `apps.access.services` and use the names it re-exports; the modules below import each other in one
direction only: common <- devices, allowlist, visits; visits <- commands.
Plate-read decisions are apps.access.decision's (which uses these modules).
"""

from apps.access.services.allowlist import (
    Allowlist,
    allowlist_current,
    allowlist_refresh,
    blocked_plate_save,
    carpark_settings_changed,
    device_settings_changed,
    permit_save,
)
from apps.access.services.commands import (
    alert_acknowledge,
    alert_raise_staff,
    barrier_open_manual,
    barrier_open_paid,
    command_result_record,
    commands_time_out,
)
from apps.access.services.common import (
    ENROLMENT_CODE_TTL,
    DeviceRevoked,
    InvalidEnrolmentCode,
    LaneOffline,
    UnknownCommand,
    UnknownLane,
    lane_policy,
)
from apps.access.services.devices import (
    ACTIVE,
    REPLACED,
    REVOKED,
    Enrolled,
    EnrolmentCodeIssued,
    device_connected,
    device_create,
    device_disconnected,
    device_enrol,
    device_enrolment_code_issue,
    device_heartbeat,
    device_revoke,
    device_update,
    devices_sweep_offline,
)
from apps.access.services.visits import (
    bookings_mark_no_show,
    reads_purge,
    visit_close_manual,
)

__all__ = [
    "ACTIVE",
    "ENROLMENT_CODE_TTL",
    "REPLACED",
    "REVOKED",
    "Allowlist",
    "DeviceRevoked",
    "Enrolled",
    "EnrolmentCodeIssued",
    "InvalidEnrolmentCode",
    "LaneOffline",
    "UnknownCommand",
    "UnknownLane",
    "alert_acknowledge",
    "alert_raise_staff",
    "allowlist_current",
    "allowlist_refresh",
    "barrier_open_manual",
    "barrier_open_paid",
    "blocked_plate_save",
    "bookings_mark_no_show",
    "carpark_settings_changed",
    "command_result_record",
    "commands_time_out",
    "device_connected",
    "device_create",
    "device_disconnected",
    "device_enrol",
    "device_enrolment_code_issue",
    "device_heartbeat",
    "device_revoke",
    "device_settings_changed",
    "device_update",
    "devices_sweep_offline",
    "lane_policy",
    "permit_save",
    "reads_purge",
    "visit_close_manual",
]
