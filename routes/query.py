"""A query string validated by one pydantic model (FastAPI's per-parameter parsing costs more CPU than the
nearest-station search itself), answered and documented as FastAPI would for the same parameters."""

from __future__ import annotations

import functools
from typing import Any, TypeVar, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def query_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``parameters`` (and the 422 answer) of a route whose query string is validated by ``model``,
    as FastAPI would write them for the same parameters declared one by one."""
    schema = model.model_json_schema()
    params = [{"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop,
               **({"description": prop["description"]} if "description" in prop else {})}
              for name, prop in schema["properties"].items()]
    return {"parameters": params, "responses": {"422": {"description": "Validation Error", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}}}


def parse_query(model: type[ModelT], request: Request) -> ModelT:
    """``model`` from the request's query string: list fields take every value of their name, the others the
    last one; errors become FastAPI's RequestValidationError (``loc`` starting with ``query``)."""
    qp = request.query_params
    data: dict[str, Any] = {}
    for name, is_list in _query_fields(model):
        if name in qp:
            data[name] = qp.getlist(name) if is_list else qp[name]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            missing = e["type"] == "missing"  # as FastAPI reports it: no input, the parameter's name only
            errors.append({**e, "loc": ("query", *e["loc"][:1]) if missing else ("query", *e["loc"]),
                           "input": None if missing else e.get("input")})
        raise RequestValidationError(errors) from None


@functools.cache
def _query_fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """(name, takes a list) of each field of ``model``."""
    def is_list(annotation: Any) -> bool:
        return get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))

    return tuple((name, is_list(f.annotation)) for name, f in model.model_fields.items())
