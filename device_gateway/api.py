"""HTTP endpoints for lane controllers and cameras (device-protocol.md 1 and 7), under /api/device/v1/."""

from asgiref.sync import sync_to_async
from ninja import NinjaAPI, Schema

from apps.access import services

api = NinjaAPI(urls_namespace="device-api", title="Parkgate lane controller API", version="1", docs_url=None)


class EnrolIn(Schema):
    code: str
    serial: str = ""
    model: str = ""


class EnrolOut(Schema):
    device_id: str
    token: str
    ws_path: str
    carpark: str
    lanes: list[str]


class Error(Schema):
    error: str


@api.post("/enrol", response={201: EnrolOut, 400: Error}, auth=None)
async def enrol(request, body: EnrolIn):
    try:
        enrolled = await sync_to_async(services.device_enrol)(code=body.code, serial=body.serial, model=body.model)
    except services.InvalidEnrolmentCode:
        return 400, {"error": "invalid_code"}
    return 201, {
        "device_id": enrolled.device_id,
        "token": enrolled.token,
        "ws_path": "/ws/device/",
        "carpark": enrolled.carpark,
        "lanes": enrolled.lanes,
    }
