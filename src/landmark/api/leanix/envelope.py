"""The LeanIX envelope: {"status": "OK", "type": ..., "data": ..., "errors": [], "total": N}."""

from typing import Any


def ok(data: Any, type_name: str = "", total: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "OK", "type": type_name, "data": data, "errors": []}
    if total is not None:
        out["total"] = total
    return out
