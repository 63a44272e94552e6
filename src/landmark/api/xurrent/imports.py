"""Xurrent's Import and Export API: /v1/import and /v1/export (reference §1.17)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, UploadFile

from landmark.api.deps import Session, SettingsDep, iso, require
from landmark.cmdb import exports, imports
from landmark.core.errors import NotFound, ValidationFailed
from landmark.core.jobs import tracked
from landmark.identity.authn import Principal
from landmark.identity.permissions import Permission

router = APIRouter(prefix="/v1", tags=["Xurrent: import and export"])
Integrator = Annotated[Principal, require(Permission.INTEGRATIONS)]


@router.post("/import")
async def upload(
    session: Session,
    who: Integrator,
    type: Annotated[str, Form()],
    file: UploadFile,
) -> dict[str, str]:
    """Upload a CSV or TSV file (UTF-8 or UTF-16LE) of one record type; poll its token."""
    content = await file.read()
    imp, _ = await imports.start(session, who.account_id, who.actor, type, content, file.filename)
    await session.commit()
    return {"token": imp.token}


@router.get("/import")
async def list_imports(session: Session, who: Integrator) -> list[dict[str, Any]]:
    found = await imports.listing(session, who.account_id)
    return [_import_summary(imp, job) for imp, job in found]


@router.get("/import/{token}")
async def import_status(session: Session, who: Integrator, token: str) -> dict[str, Any]:
    imp, job = await tracked(session, imports.Import, who.account_id, token)
    body = _import_summary(imp, job)
    body["log"] = await imports.failures(session, who.account_id, imp.id)
    return body


def _import_summary(imp: imports.Import, job: Any) -> dict[str, Any]:
    return {
        "token": imp.token,
        "type": imp.type,
        "created_at": iso(imp.created_at),
        **imports.status(job),
    }


@router.post("/export", response_model=None)
async def start_export(
    request: Request, session: Session, who: Integrator
) -> dict[str, str] | Response:
    """Export one or more types (comma-separated); 204 when nothing changed since `from`."""
    fields = await _fields(request)
    types = exports.parse_types(str(fields.get("type") or ""))
    since = _since(fields.get("from"))
    export = await exports.start(session, who.account_id, types, since)
    await session.commit()
    if export is None:
        return Response(status_code=204)
    return {"token": export.token}


async def _fields(request: Request) -> dict[str, Any]:
    """The request's fields: a JSON body (Ruby SDK) or a form (the .NET SDK), or the query."""
    fields: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = await request.json()
        if isinstance(body, dict):
            fields.update(body)
    elif kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        fields.update((await request.form()).items())
    return fields


def _since(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        since = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise ValidationFailed(
            "Validation Failed", [("from", "must be a date and time with an offset (ISO 8601)")]
        )
    return since


@router.get("/export/{token}")
async def export_status(
    session: Session, who: Integrator, settings: SettingsDep, token: str
) -> dict[str, Any]:
    export, job = await tracked(session, exports.Export, who.account_id, token)
    body: dict[str, Any] = {"token": export.token, "state": exports.state(job)}
    if body["state"] == "done":
        body["url"] = f"{settings.base_url.rstrip('/')}/v1/export/{export.token}/download"
    elif body["state"] == "error" and job is not None:
        body["message"] = job.error or "The export failed"
    return body


@router.get("/export/{token}/download", response_model=None)
async def download(session: Session, who: Integrator, token: str) -> Response:
    export, job = await tracked(session, exports.Export, who.account_id, token)
    data = await exports.content(session, export)
    if data is None:
        raise NotFound("The export is not ready")
    return Response(
        data,
        media_type=export.media_type or "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
