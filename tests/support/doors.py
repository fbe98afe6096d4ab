"""The front doors a path belongs to, and each door's own error shape (checked against its schema)."""

from __future__ import annotations

import json
from typing import Any

DOORS = (("/imports", "native"), ("/datasets", "native"), ("/ops/", "ops"), ("/v2/", "yesmail"), ("/api/v4/", "thalamus"),
         ("/objectimport/", "teamtracks"), ("/job/", "teamtracks"), ("/api/adm/", "admin"), ("/api/admin/", "admin"))
ERROR_SCHEMAS = {"native": "NativeError", "ops": "NativeError", "yesmail": "YesmailError", "thalamus": "ThalamusErrors",
                 "teamtracks": "TeamTracksError", "admin": "AdminCommandResponse"}


def door_of(path: str) -> str | None:
    """Which front door a path belongs to (None: health, ready, metrics, the schema, the UI)."""
    return next((door for prefix, door in DOORS if path.startswith(prefix)), None)


class ErrorShapes:
    """Each door's error body, checked against that door's own schema in the service's OpenAPI
    document and for what a schema cannot say (the status it repeats, a non-empty sentence)."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        import jsonschema_rs

        self.validators = {
            door: jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": openapi["components"]})
            for door, name in ERROR_SCHEMAS.items()
        }

    def problems(self, path: str, status: int, text: str) -> list[str]:
        """What is wrong with a 4xx answer of `path` (empty: it is the door's error shape)."""
        door = door_of(path)
        if door is None:
            return []
        try:
            body = json.loads(text)
        except ValueError:
            return [f"{door}: not JSON: {text[:200]!r}"]
        found = [f"{door}: {e.message}" for e in self.validators[door].iter_errors(body)]
        if found:
            return found
        sentence = {
            "native": lambda: body["error"]["message"], "ops": lambda: body["error"]["message"],
            "yesmail": lambda: body["error"]["message"], "teamtracks": lambda: body["message"],
            "admin": lambda: body["errorMessage"], "thalamus": lambda: "; ".join(body["errors"].values()),
        }[door]()
        if not (isinstance(sentence, str) and sentence.strip()):
            found.append(f"{door}: no message in {body}")
        repeated = {"yesmail": lambda: body["error"]["status"], "teamtracks": lambda: body["statusCode"],
                    "admin": lambda: body["code"]}.get(door)
        if repeated is not None and repeated() != status:
            found.append(f"{door}: the body says status {repeated()}, the answer is {status}")
        if door == "admin" and body["success"] is not False:
            found.append("admin: an error with success true")
        return found
