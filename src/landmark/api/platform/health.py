"""Liveness and readiness."""

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from landmark.core.migrate import pending_migrations

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is current."""
    try:
        async with request.app.state.engine.connect() as connection:
            pending = await connection.run_sync(pending_migrations)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return JSONResponse(
            {"status": "unavailable", "database": type(exc).__name__}, status_code=503
        )
    if pending:
        return JSONResponse(
            {"status": "unavailable", "pending_migrations": pending}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok", "migrations": "current"})
