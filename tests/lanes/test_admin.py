"""Lane controllers, permits and the block list in the Django admin: every write goes through the services, so the
admin keeps the protocol's promises (device-protocol.md 1-3): revoking closes the live connection (4401), a device
added there gets its one-time enrolment code, a change of lanes reaches the connection as a new `welcome`, and a
plate typed as written is matched by normal form and look-alike key."""

import asyncio
import json
import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from websockets.exceptions import ConnectionClosed

from apps.access import receivers, services
from apps.access.decision import plate_read_decide
from apps.access.models import BlockedPlate, Device, EnrolmentCode, Permit
from apps.access.tokens import hash_secret
from apps.carparks.models import Lane
from apps.core import events
from apps.core.models import AuditLog
from apps.core.plates import lookalike_key
from tests.clients import LaneController
from tests.lanes.conftest import in_thread, make_device, now

CODE = re.compile(r"<code>([A-Za-z0-9_-]{43})</code>")
DEVICES = "/admin/access/device/"


def _staff_client(client):
    boss = get_user_model().objects.create_superuser("boss", "boss@parkgate.test", "pw-123456789")
    client.force_login(boss)
    client.user = boss
    return client


@pytest.fixture
def staff_client(client, world_db):
    return _staff_client(client)


@pytest.fixture
def live_staff_client(client, world):
    """For tests beside a real `serve`: the session and everything the admin writes are committed."""
    return _staff_client(client)


def lane_ids(*codes: str) -> list[str]:
    return [str(Lane.objects.get(code=code).id) for code in codes]


def device_form(device: Device, **data) -> dict:
    """A device's change form as posted, with `data` changed."""
    lanes = [str(lane.id) for lane in device.lanes.all()]
    return {"name": device.name, "lanes": lanes, "settings": json.dumps(device.settings)} | data


def split(value) -> dict:
    """The admin's date and time inputs for a datetime."""
    return {"0": value.strftime("%Y-%m-%d"), "1": value.strftime("%H:%M:%S")}


def permit_form(**data) -> dict:
    start, end = split(now() - timedelta(days=1)), split(now() + timedelta(days=30))
    return {
        "holder": "Season ticket", "valid_from_0": start["0"], "valid_from_1": start["1"],
        "valid_until_0": end["0"], "valid_until_1": end["1"], **data,
    }  # fmt: skip


def decide(device_id: str, lane: str, plate: str, read_id: str) -> dict:
    return plate_read_decide(
        device_id=device_id, read_id=read_id, lane_code=lane, plate=plate, score=0.95, captured_at=now()
    )


async def closed_code(lane: LaneController, timeout: float = 10) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(lane.ws.recv(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


# --- 1. Status fields are read-only; revocation is an action calling services.device_revoke --------------------


def test_status_fields_and_the_car_park_of_a_device_cannot_be_edited(staff_client, world_db):
    device = Device.objects.get(pk=make_device("TST1", ["IN"])["device_id"])
    services.device_revoke(device_id=str(device.id))
    Device.objects.filter(pk=device.pk).update(online=True, firmware="1.4.2")
    device.refresh_from_db()
    assert device.revoked_at is not None
    page = staff_client.get(f"{DEVICES}{device.pk}/change/")
    assert page.status_code == 200
    for name in ("revoked_at_0", "enrolled_at_0", "online", "last_seen_at_0", "serial", "model", "firmware",
                 "barriers", "connection_id", "carpark", "token_hash"):  # fmt: skip
        assert f'name="{name}"' not in page.text, name
    assert "TST1 Test One" in page.text  # the car park is shown, read-only

    # A hand-made POST with every status field cleared (the old form un-revoked the device this way) changes none.
    posted = device_form(
        device, name="renamed", carpark=str(world_db["two"].id), revoked_at_0="", revoked_at_1="", serial="",
        model="", firmware="", barriers="{}", connection_id="",
    )  # fmt: skip
    response = staff_client.post(f"{DEVICES}{device.pk}/change/", posted)
    assert response.status_code == 302, response.content
    fresh = Device.objects.get(pk=device.pk)
    assert fresh.name == "renamed"
    assert (fresh.revoked_at, fresh.online, fresh.serial, fresh.firmware, fresh.carpark_id) == (
        device.revoked_at, True, "S", "1.4.2", world_db["one"].id,
    )  # fmt: skip


def test_revoke_action_runs_the_service_from_the_list_and_from_the_device_page(staff_client, world_db):
    one = Device.objects.get(pk=make_device("TST1", ["IN"])["device_id"])
    two = Device.objects.get(pk=make_device("TST1", ["OUT"])["device_id"])
    Device.objects.filter(pk=one.pk).update(online=True)
    response = staff_client.post(DEVICES, {"action": "revoke", "_selected_action": [str(one.pk)]}, follow=True)
    assert response.status_code == 200 and "Revoked dev-IN" in response.text
    one.refresh_from_db()
    assert one.revoked_at is not None and one.online is False
    audit = AuditLog.objects.get(action="device.revoke")
    assert (audit.actor, audit.object_id) == (staff_client.user, str(one.pk))

    again = staff_client.post(DEVICES, {"action": "revoke", "_selected_action": [str(one.pk)]}, follow=True)
    assert "Already revoked: dev-IN" in again.text and AuditLog.objects.filter(action="device.revoke").count() == 1

    page = staff_client.get(f"{DEVICES}{two.pk}/change/")
    assert "Revoke this device" in page.text
    staff_client.post(f"{DEVICES}{two.pk}/change/", {"CHANGE_FORM-action": "revoke", "_selected_action": [str(two.pk)]})
    two.refresh_from_db()
    assert two.revoked_at is not None


def test_revoke_action_closes_the_live_connection_with_4401(parkgate, world, live_staff_client):
    device = make_device("TST1", ["IN"])

    async def drive():
        async with LaneController(parkgate, device["token"]) as lane:
            await lane.hello()
            response = await in_thread(
                live_staff_client.post, DEVICES, {"action": "revoke", "_selected_action": [device["device_id"]]}
            )
            return response.status_code, await closed_code(lane)

    assert asyncio.run(drive()) == (302, 4401)
    revoked = Device.objects.get(pk=device["device_id"])
    assert revoked.revoked_at is not None and revoked.online is False
    assert AuditLog.objects.get(action="device.revoke").actor == live_staff_client.user


# --- 2. Adding a device issues its one-time enrolment code; "New enrolment code" --------------------------------


def test_a_device_added_in_the_admin_shows_its_code_once_and_the_code_enrols(live_staff_client, world):
    client = live_staff_client
    add = client.get(f"{DEVICES}add/")
    assert add.status_code == 200 and 'name="carpark"' in add.text and 'name="revoked_at_0"' not in add.text
    response = client.post(
        f"{DEVICES}add/",
        {"name": "North gate", "carpark": str(world["one"].id), "lanes": lane_ids("IN", "OUT"),
         "settings": '{"cameras": {"cam1": "IN"}}'},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert "valid 24 h" in response.text and "shown only on this page" in response.text
    assert "{#" not in response.text  # the template's comment stays a comment
    (code,) = CODE.findall(response.text)
    device = Device.objects.get()
    assert device.name == "North gate" and device.settings == {"cameras": {"cam1": "IN"}}
    assert sorted(device.lanes.values_list("code", flat=True)) == ["IN", "OUT"]
    assert EnrolmentCode.objects.get(device=device).code_hash == hash_secret(code)
    assert {a.action for a in AuditLog.objects.filter(actor=client.user)} == {"device.create", "device.enrolment_code"}

    # Shown once: not kept for a later page, nor anywhere in clear.
    assert code not in str(response.cookies) and code not in client.get(DEVICES).text
    assert not any(code in str(s.get_decoded()) for s in Session.objects.all())
    assert not any(code in str(a.data) for a in AuditLog.objects.all())
    assert not any(code in entry.change_message for entry in LogEntry.objects.all())

    enrolled = client.post("/api/device/v1/enrol", {"code": code, "serial": "T-1"}, content_type="application/json")
    assert enrolled.status_code == 201, enrolled.content
    assert (enrolled.json()["device_id"], enrolled.json()["carpark"], enrolled.json()["lanes"]) == (
        str(device.id), "TST1", ["IN", "OUT"],
    )  # fmt: skip
    again = client.post("/api/device/v1/enrol", {"code": code}, content_type="application/json")
    assert (again.status_code, again.json()) == (400, {"error": "invalid_code"})


def test_new_enrolment_code_action_replaces_unused_codes_and_skips_revoked_devices(staff_client, world_db):
    first, first_issued = services.device_create(carpark_code="TST1", lane_codes=["IN"], name="gate")
    gone, _ = services.device_create(carpark_code="TST1", lane_codes=["OUT"], name="gone")
    services.device_revoke(device_id=str(gone.id))
    response = staff_client.post(DEVICES, {"action": "new_enrolment_code", "_selected_action": [first.pk, gone.pk]})
    assert response.status_code == 200
    (code,) = CODE.findall(response.text)
    assert "No code for revoked devices (create a new device): gone" in response.text
    assert EnrolmentCode.objects.filter(device=gone).count() == 1
    assert code not in str(response.cookies) and code not in staff_client.get(DEVICES).text
    with pytest.raises(services.InvalidEnrolmentCode):
        services.device_enrol(code=first_issued.code)  # the lost code no longer works
    assert services.device_enrol(code=code, serial="S2").device_id == str(first.id)
    audit = AuditLog.objects.filter(action="device.enrolment_code", actor=staff_client.user).get()
    assert audit.object_id == str(first.id) and code not in str(audit.data)


def test_the_enrol_device_command_still_prints_a_working_code(world_db, capsys):
    from django.core.management import call_command

    call_command("enrol_device", "--carpark", "TST1", "--lane", "IN", "--name", "cli")
    code = capsys.readouterr().out.strip().splitlines()[-1]
    assert services.device_enrol(code=code).lanes == ["IN"]
    assert AuditLog.objects.get(action="device.create").actor_label == "command line"


# --- 3. A device's lanes are its car park's -------------------------------------------------------------------


def test_lanes_of_another_car_park_are_a_form_error(staff_client, world_db):
    response = staff_client.post(
        f"{DEVICES}add/", {"carpark": str(world_db["one"].id), "lanes": lane_ids("IN", "X-IN"), "settings": "{}"}
    )
    assert response.status_code == 200
    assert "A device serves lanes of its own car park (TST1) only; not TST2/X-IN." in response.text
    assert not Device.objects.exists() and not EnrolmentCode.objects.exists()

    device = Device.objects.get(pk=make_device("TST1", ["IN"])["device_id"])
    response = staff_client.post(f"{DEVICES}{device.pk}/change/", device_form(device, lanes=lane_ids("X-OUT")))
    assert response.status_code == 200 and "not TST2/X-OUT" in response.text
    assert list(device.lanes.values_list("code", flat=True)) == ["IN"]


# --- 4. A change of lanes reaches the live connection as a new welcome -------------------------------------------


def test_changing_a_devices_lanes_sends_a_new_welcome_to_its_connection(parkgate, world, live_staff_client):
    device = make_device("TST1", ["IN"])
    change = f"{DEVICES}{device['device_id']}/change/"

    async def drive():
        async with LaneController(parkgate, device["token"], name="adm") as lane:
            welcome = await lane.hello()
            before = await lane.read("IN2", "AB12CDE")
            posted = {"name": "dev-IN", "lanes": await in_thread(lane_ids, "IN", "IN2"), "settings": "{}"}
            response = await in_thread(live_staff_client.post, change, posted)
            again = await lane.recv(timeout=10)
            after = await lane.read("IN2", "AB12CDE")
            return welcome, before, response.status_code, again, after

    welcome, before, status, again, after = asyncio.run(drive())
    assert welcome["lanes"] == [{"code": "IN", "direction": "entry"}]
    assert (before["type"], before["code"]) == ("error", "unknown_lane")
    assert status == 302
    assert again["type"] == "welcome"
    assert again["lanes"] == [{"code": "IN", "direction": "entry"}, {"code": "IN2", "direction": "entry"}]
    assert (after["type"], after["reason"]) == ("decision", "unknown_vehicle")
    audit = AuditLog.objects.get(action="device.update")
    assert audit.actor == live_staff_client.user and audit.data["lanes"] == ["IN", "IN2"]


def test_saving_a_device_publishes_a_welcome_nudge_only_when_something_changed(staff_client, world_db, monkeypatch):
    device = Device.objects.get(pk=make_device("TST1", ["IN"])["device_id"])
    sent = []
    monkeypatch.setattr(events, "publish_to_device", lambda **event: sent.append(event))
    change = f"{DEVICES}{device.pk}/change/"
    assert staff_client.post(change, device_form(device)).status_code == 302
    assert sent == [] and not AuditLog.objects.filter(action="device.update").exists()
    settings = '{"cameras": {"cam1": "IN"}}'
    assert staff_client.post(change, device_form(device, settings=settings)).status_code == 302
    assert sent == [{"device_id": str(device.pk), "kind": "welcome", "data": {}}]
    assert Device.objects.get(pk=device.pk).settings == {"cameras": {"cam1": "IN"}}


# --- 5. Permits and blocked plates: typed as written, matched by normal form and look-alike key -------------------


def test_a_permit_typed_as_written_opens_for_its_normal_form_and_look_alikes(staff_client, world_db, monkeypatch):
    refreshed = []
    monkeypatch.setattr(receivers, "enqueue_coalesced", lambda name, **kw: refreshed.append((name, kw["carpark_id"])))
    device = make_device("TST1", ["IN", "OUT"])["device_id"]
    add = staff_client.get("/admin/access/permit/add/")
    assert 'name="plate_raw"' in add.text and ">Plate:<" in add.text
    assert 'name="plate"' not in add.text and 'name="lookalike_key"' not in add.text
    response = staff_client.post(
        "/admin/access/permit/add/", permit_form(carpark=str(world_db["one"].id), plate_raw="ab-12 cde")
    )
    assert response.status_code == 302, response.content
    permit = Permit.objects.get()
    assert (permit.plate_raw, permit.plate, permit.lookalike_key) == ("ab-12 cde", "AB12CDE", lookalike_key("AB12CDE"))
    assert refreshed == [("access.allowlist_refresh", world_db["one"].id)]  # the allow-list follows
    assert AuditLog.objects.get(action="permit.create").actor == staff_client.user

    lookalike = decide(device, "IN", "A812CDE", "p-1")
    assert (lookalike["action"], lookalike["reason"], lookalike["match"]) == ("open", "permit", "lookalike")
    assert decide(device, "OUT", "A812CDE", "p-2")["reason"] == "permit"  # out again (anti-passback)
    exact = decide(device, "IN", "AB12CDE", "p-3")
    assert (exact["action"], exact["reason"], exact["match"]) == ("open", "permit", "exact")

    changed = permit_form(carpark=str(world_db["one"].id), plate_raw="xy99 zzz")
    assert staff_client.post(f"/admin/access/permit/{permit.pk}/change/", changed).status_code == 302
    permit.refresh_from_db()
    assert (permit.plate, permit.lookalike_key) == ("XY99ZZZ", lookalike_key("XY99ZZZ"))
    assert AuditLog.objects.filter(action="permit.update").exists()


def test_a_blocked_plate_typed_as_written_denies_it_and_its_look_alikes(staff_client, world_db):
    device = make_device("TST1", ["IN"])["device_id"]
    response = staff_client.post(
        "/admin/access/blockedplate/add/", {"carpark": str(world_db["one"].id), "plate_raw": "bl-0ck", "reason": "x"}
    )
    assert response.status_code == 302, response.content
    blocked = BlockedPlate.objects.get()
    assert (blocked.plate, blocked.lookalike_key) == ("BL0CK", lookalike_key("BL0CK"))
    assert AuditLog.objects.get(action="blocked_plate.create").actor == staff_client.user
    for n, plate in enumerate(("BL0CK", "BLOCK")):
        decision = decide(device, "IN", plate, f"b-{n}")
        assert (decision["action"], decision["reason"]) == ("deny", "blocked")


def test_plates_without_letters_or_digits_and_backwards_validity_are_form_errors(staff_client, world_db):
    carpark = str(world_db["one"].id)
    no_plate = staff_client.post("/admin/access/permit/add/", permit_form(carpark=carpark, plate_raw=" - "))
    assert no_plate.status_code == 200 and "A plate has letters or digits, e.g. AB12 CDE." in no_plate.text
    start = split(now())
    backwards = permit_form(carpark=carpark, plate_raw="AB12CDE", valid_until_0=start["0"], valid_until_1=start["1"])
    backwards |= {"valid_from_0": start["0"], "valid_from_1": start["1"]}
    response = staff_client.post("/admin/access/permit/add/", backwards)
    assert response.status_code == 200 and "A permit&#x27;s end must be after its start." in response.text
    blocked = staff_client.post("/admin/access/blockedplate/add/", {"carpark": carpark, "plate_raw": "..."})
    assert blocked.status_code == 200 and "A plate has letters or digits" in blocked.text
    assert not Permit.objects.exists() and not BlockedPlate.objects.exists()
    with pytest.raises(ValueError):
        services.blocked_plate_save(blocked_plate=BlockedPlate(carpark=world_db["one"], plate_raw="--"))
