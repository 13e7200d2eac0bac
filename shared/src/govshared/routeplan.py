"""A route's request handling planned once, when the route is built, instead of on every request.

FastAPI's request handler (``fastapi.routing.get_request_handler``) and its dependency solver
(``solve_dependencies``) work out on every request what never changes for a route: which
sub-dependencies are generators, their cache keys (OAuth scopes included), whether overrides
apply, a ``Response`` to collect headers nobody sets, the query string parsed for a route with no
query parameter, the request's ``Content-Type`` parsed with ``email.message``; and it reads a JSON
body with the standard library's parser. For approval's submission and lifecycle actions that was
about a quarter of the Python work outside the endpoints (``make bench-instructions``).

``planned_handler`` returns a handler that does the same steps in the same order with those answers
precomputed: the body is read and parsed first (a malformed JSON body is a 422 before anything
else, as in FastAPI), then the sub-dependencies in declaration order (the bearer principal: 401
or 403 before any 422 on the body's fields), then path, query, header and cookie parameters and
the body's fields, whose errors are raised together as one ``RequestValidationError``. The values,
the errors, the exceptions and the response are FastAPI's own.

Only routes whose whole dependency tree is plain coroutines (no ``yield`` dependency, no sync
dependency run in a thread, no ``BackgroundTasks``, ``Response``, ``SecurityScopes`` or WebSocket
parameter, no concurrency limit), a coroutine endpoint that is not a stream,
and a body that is JSON or absent are planned; any other route keeps FastAPI's handler. A request
that arrives while dependency overrides are set (tests) or with FastAPI's OpenTelemetry enabled
goes through FastAPI's handler too, so that both behave exactly as FastAPI does.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import params
from fastapi._body_limit import get_body_limit_error
from fastapi._compat import ModelField, Undefined, lenient_issubclass
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import (
    Dependant,
    _get_cache_key,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
)
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import _extract_endpoint_context, serialize_response
from fastapi.sse import EventSourceResponse
from fastapi.telemetry._api import _get_request_telemetry, _validation_failed
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

# What FastAPI decides from a request's Content-Type, per distinct header value (a handful in
# practice); bounded, since the header is the client's.
_JSON_CONTENT_TYPES: dict[str, bool] = {}
_JSON_CONTENT_TYPES_MAX = 256


def _is_json_content_type(value: str) -> bool:
    """FastAPI's test of a Content-Type header (``application/json`` or ``application/*+json``,
    as ``email.message`` parses it), remembered per header value."""
    known = _JSON_CONTENT_TYPES.get(value)
    if known is None:
        message = email.message.Message()
        message["content-type"] = value
        subtype = message.get_content_subtype()
        known = message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        )
        if len(_JSON_CONTENT_TYPES) >= _JSON_CONTENT_TYPES_MAX:
            _JSON_CONTENT_TYPES.clear()
        _JSON_CONTENT_TYPES[value] = known
    return known


# Every digit as "0", to find a run of 19 with one search (a regular expression took 18 µs on a
# 1.7 KB form, this 2).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else i for i in range(256))
_LONG_DIGITS = b"0" * 19


async def _json(request: Request, body: bytes) -> Any:
    """The body as JSON: orjson (a third of the standard library's CPU: 3 against 9 µs for a
    1.7 KB form) for what it reads as the standard library does, FastAPI's own ``request.json()``
    (the standard library) for the rest, so that every body reads as it did and every malformed
    one fails with the standard library's error. orjson refuses what the standard library takes
    (``NaN``, ``1e400``, a lone surrogate, a byte-order mark, UTF-16 or UTF-32): those fall back.
    It reads an integer beyond 64 bits as a float where the standard library keeps it exact: a
    body with a run of 19 digits or more goes to the standard library directly."""
    if _LONG_DIGITS not in body.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return await request.json()


@dataclass(frozen=True, slots=True)
class _Step:
    """A sub-dependency: its own plan, the call, where its value goes and its cache key."""

    plan: _Plan
    call: Callable[..., Any]
    name: str | None
    use_cache: bool
    cache_key: Any


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``solve_dependencies`` does for one dependant, worked out once."""

    steps: tuple[_Step, ...]
    path_params: list[ModelField]
    query_params: list[ModelField]
    header_params: list[ModelField]
    cookie_params: list[ModelField]
    body_params: list[ModelField]
    request_names: tuple[str, ...]  # parameters given the Request itself

    async def solve(
        self, request: Request, body: Any, embed: bool, cache: dict[Any, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        """The dependant's values and validation errors, as ``solve_dependencies`` finds them."""
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for step in self.steps:
            sub_values, sub_errors = await step.plan.solve(request, body, embed, cache)
            if sub_errors:
                errors.extend(sub_errors)
                continue
            key = step.cache_key
            if step.use_cache and key in cache:
                solved = cache[key]
            else:
                solved = await step.call(**sub_values)
            if step.name is not None:
                values[step.name] = solved
            if key not in cache:
                cache[key] = solved
        # FastAPI's order (path, query, header, cookie); each source read only when the route has
        # parameters there (the cookies are parsed on first read).
        for fields, source in (
            (self.path_params, "path_params"),
            (self.query_params, "query_params"),
            (self.header_params, "headers"),
            (self.cookie_params, "cookies"),
        ):
            if fields:
                found, bad = request_params_to_args(fields, getattr(request, source))
                values.update(found)
                errors += bad
        if self.body_params:
            found, bad = await request_body_to_args(
                body_fields=self.body_params, received_body=body, embed_body_fields=embed
            )
            values.update(found)
            errors.extend(bad)
        for name in self.request_names:
            values[name] = request
        return values, errors


def _plan(dependant: Dependant, *, endpoint: bool = False) -> _Plan | None:
    """The plan of ``dependant`` and its sub-dependencies, or None when any of them needs what
    only FastAPI's own solver does (see the module)."""
    if (
        dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.concurrency is not None
        or dependant.call is None
        or _is_gen_callable(dependant.call)
        or _is_async_gen_callable(dependant.call)
        or not _is_coroutine_callable(dependant.call)
    ):
        return None
    if not endpoint and dependant.body_params:
        return None  # a sub-dependency's own body fields: left to FastAPI
    steps = []
    for sub in dependant.dependencies:
        sub_plan = _plan(sub)
        if sub_plan is None:
            return None
        steps.append(
            _Step(
                plan=sub_plan,
                call=sub.call,  # type: ignore[arg-type]  # checked by _plan(sub)
                name=sub.name,
                use_cache=sub.use_cache,
                cache_key=_get_cache_key(dependant=sub),
            )
        )
    return _Plan(
        steps=tuple(steps),
        path_params=dependant.path_params,
        query_params=dependant.query_params,
        header_params=dependant.header_params,
        cookie_params=dependant.cookie_params,
        body_params=dependant.body_params,
        request_names=tuple(
            name
            for name in (dependant.http_connection_param_name, dependant.request_param_name)
            if name
        ),
    )


def planned_handler(route: Any, fallback: Handler) -> Handler:
    """A handler for ``route`` (an ``APIRoute``, or FastAPI's effective route of an included
    router) that plans its work once, or ``fallback`` (FastAPI's handler) when the route needs
    what the plan does not do. ``fallback`` also answers the requests the plan must not (see the
    module)."""
    dependant: Dependant = route.dependant
    body_field: ModelField | None = route.body_field
    response_class = route.response_class
    actual_response_class = (
        response_class.value if isinstance(response_class, DefaultPlaceholder) else response_class
    )
    strict = route.strict_content_type
    strict_content_type = strict.value if isinstance(strict, DefaultPlaceholder) else strict
    plan = _plan(dependant, endpoint=True)
    if (
        plan is None
        or (body_field is not None and isinstance(body_field.field_info, params.Form))
        or getattr(route, "stream_item_field", None) is not None
        or getattr(route, "is_json_stream", False)
        or lenient_issubclass(actual_response_class, EventSourceResponse)
    ):
        return fallback
    call = dependant.call
    assert call is not None
    status_code: int | None = route.status_code
    response_field: ModelField | None = route.response_field
    overrides = route.dependency_overrides_provider
    embed: bool = route._embed_body_fields
    use_dump_json = response_field is not None and isinstance(response_class, DefaultPlaceholder)
    serialize_options = {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }

    def endpoint_context(request: Request) -> Any:
        context = _extract_endpoint_context(call)
        if dependant.path:
            mount_path = request.scope.get("root_path", "").rstrip("/")
            context["path"] = f"{request.method} {mount_path}{dependant.path}"
        return context

    async def read_body(request: Request) -> Any:
        try:
            body_bytes = await request.body()
            if not body_bytes:
                return Undefined
            content_type = request.headers.get("content-type")
            if not content_type:
                if not strict_content_type:
                    return await _json(request, body_bytes)
            elif _is_json_content_type(content_type):
                return await _json(request, body_bytes)
            return body_bytes
        except json.JSONDecodeError as e:
            error = RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", e.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": e.msg},
                    }
                ],
                body=e.doc,
                endpoint_ctx=endpoint_context(request),
            )
            _validation_failed(error)
            raise error from e
        except HTTPException:
            raise  # a middleware's refusal, raised from receive
        except Exception as e:
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(e)):
                raise limit from e
            raise HTTPException(
                status_code=400, detail="There was an error parsing the body"
            ) from e

    async def handler(request: Request) -> Response:
        if (overrides is not None and overrides.dependency_overrides) or (
            _get_request_telemetry() is not None
        ):
            return await fallback(request)
        body = await read_body(request) if body_field is not None else Undefined
        values, errors = await plan.solve(request, body, embed, {})
        if errors:
            error = RequestValidationError(
                errors,
                body=None if body is Undefined else body,
                endpoint_ctx=endpoint_context(request),
            )
            _validation_failed(error)
            raise error
        raw = await call(**values)
        if isinstance(raw, Response):
            return raw
        content = await serialize_response(
            field=response_field,
            response_content=raw,
            endpoint_ctx=endpoint_context(request),
            dump_json=use_dump_json,
            **serialize_options,
        )
        response_args: dict[str, Any] = {"background": None}
        if status_code is not None:
            response_args["status_code"] = status_code
        if use_dump_json:
            response = Response(content=content, media_type="application/json", **response_args)
        else:
            response = actual_response_class(content, **response_args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    return handler
