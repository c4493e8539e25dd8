"""The ASGI app of a served system: the participant page, its JSON API, and the headers every response carries.

Routes
------
``GET /``                   the participant page (consent, instructions, practice, trials, debrief)
``GET /static/<file>``      its script and style sheet (no inline code: the CSP allows only these)
``GET /media/<n>``          item number ``n``'s image, video or audio file (:mod:`.media`; ranges for video)
``GET /api/texts``          the consent, instructions, break and debrief texts and the trial question
``POST /api/session``       consent given: start (or resume) the participant's session; its token and trials
``GET /api/session``        the session's trials (leases renewed, expired ones replaced); a reload starts here
``POST /api/answer``        one answer, for a trial the session holds; the session's state after it:
                            ``{"key", "choice", "rt_ms", "input"}``, a ranked trial ``"ranking"`` (the
                            options' shown positions, most similar first) instead of ``"choice"``
``GET /admin``              the experimenter's page (only with an admin token, :mod:`.admin`; else 404)
``GET /api/admin/summary``  its data: progress, answer rates, sessions, each participant's quality
``GET /healthz``            ``{"ok": true}``
``GET /favicon.ico``        204: the page has no icon

A session is named by a signed token (``Authorization: Bearer <token>``,
:class:`~oddoneout.serve.tokens.ServerKeys`), never by a cookie, so no other site can answer for
it. Every request is checked before anything changes: a missing or forged token is 401, a body
that is not a small JSON object 400/413/415, an impossible choice, ranking or response time 422
(for the trial type asked: the reference of an anchor or ranked trial, a position out of range, a
repeated option or a ranking of another length; :func:`~oddoneout.collect.leases.check_answer`), an answer
for a trial the session does not hold (forged, another's, expired, already answered: a replay) 409.
Requests beyond a session's token bucket (answers and reloads), or a client address's (session
starts), are 429 with ``Retry-After`` (:mod:`.ratelimit`; the limits are the system's settings).
The pages set every text with ``textContent``; the one text the server puts into HTML (the
title) is HTML-escaped. A media file is found by the item's number among the files checked when
the server started, never by a path from the request, and is sent with its own content type and
HTTP range support (``FileResponse``), so a video can be sought and streamed. The admin routes
need ``Authorization: Bearer <admin token>`` (401 without it) and answer 404 when the server has
no admin token.

Threading: the endpoints are ``async`` and call the lease book synchronously, so every statement
on the store runs on the event loop's thread, one at a time; the store's connection is never
shared between threads. The admin summary reads through a read-only connection of its own, in a
worker thread, so it never holds up an answer.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from oddoneout.collect.flow import completion_url, question
from oddoneout.collect.leases import LeaseBook, LeaseError, SessionState
from oddoneout.errors import InputError
from oddoneout.serve.admin import AdminKey, admin_summary
from oddoneout.serve.experiment import Experiment
from oddoneout.serve.platforms import arrival
from oddoneout.serve.ratelimit import RateLimiter
from oddoneout.serve.tokens import ServerKeys, new_session_id

#: Largest request body accepted (bytes); an answer is about 120.
MAX_BODY = 4096
#: Most URL parameters a session start may carry.
MAX_PARAMS = 32
#: Headers of every response. The page loads only its own script, style and media, talks only to this
#: server, and may not be framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_JS, _CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
_STATIC = {"participant.js": _JS, "participant.css": _CSS}
#: Served only when the admin page is on.
_ADMIN_STATIC = {"admin.js": _JS, "admin.css": _CSS}
_NO_STORE = {"cache-control": "no-store"}
#: A media file may be kept by the participant's browser (the same item comes back in other trials).
_MEDIA_CACHE = {"cache-control": "private, max-age=3600"}
_KEY_MAX = 2**62


class ApiError(Exception):
    """A refused request: its HTTP status, a one-line reason (said to the client) and any headers to send."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _limit(limiter: RateLimiter, key: str) -> None:
    """Take a token of ``key``'s bucket, or refuse the request (429, ``Retry-After``) before it changes anything."""
    wait = limiter.retry_after(key)
    if wait is not None:
        raise ApiError(429, f"too many requests: try again in {wait} s", {"retry-after": str(wait)})


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response (error pages included)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


async def read_json(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object, refused when it is not JSON (415, 400), or too large (413)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "send application/json")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise ApiError(413, f"the body exceeds {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, f"the body exceeds {MAX_BODY} bytes")
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object")
    return value


def _trial_key(value: Any) -> tuple[str, int, int, int]:
    """A trial key from JSON: ``[design, triplet_index, ordering, repeat]``."""
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not isinstance(value[0], str)
        or not 0 < len(value[0]) <= 64
        or not all(type(v) is int and 0 <= v < _KEY_MAX for v in value[1:])
    ):
        raise ApiError(422, "key must be [design, triplet_index, ordering, repeat]")
    return value[0], value[1], value[2], value[3]


def create_app(experiment: Experiment, book: LeaseBook, keys: ServerKeys, admin: AdminKey | None = None) -> Starlette:
    """The app serving ``experiment``, with its sessions in ``book`` and tokens signed by ``keys``.

    The caller owns ``book``'s store (opens it before serving and closes it after). With ``admin``,
    the admin page and its summary are served to requests carrying its token.
    """
    files = resources.files(__package__).joinpath("static")
    title = html.escape(experiment.title)
    page = files.joinpath("index.html").read_text(encoding="utf-8").replace("{{title}}", title)
    admin_page = files.joinpath("admin.html").read_text(encoding="utf-8").replace("{{title}}", title)
    kinds = {**_STATIC, **(_ADMIN_STATIC if admin is not None else {})}
    static = {name: files.joinpath(name).read_bytes() for name in kinds}
    settings, kind = experiment.settings, experiment.trial_type
    texts = {
        "consent": settings.consent_text,
        "instructions": settings.instructions_text,
        "debrief": settings.debrief_text,
        "break": settings.break_text,
        "question": question(settings.question_text, kind.name, kind.n_shown, kind.n_ranked),
    }
    answers = RateLimiter(settings.answers_per_second, settings.answer_burst)
    starts = RateLimiter(settings.sessions_per_minute / 60, settings.session_burst)
    design_sizes = {design.name: len(design) for design in experiment.designs}
    practice = experiment.practice_trials()

    def state_json(state: SessionState, **extra: Any) -> JSONResponse:
        body = {
            "n_trials": state.n_trials,
            "n_answered": state.n_answered,
            "n_catch": state.n_catch,
            "n_catch_answered": state.n_catch_answered,
            "done": state.done,
            "full": state.done and state.n_answered == 0,
            "completion_code": state.completion_code,
            "completion_url": completion_url(settings.completion_url, state.completion_code),
            "layout": experiment.layout,
            "break_every": settings.break_every,
            "trials": [
                {"position": t.position, "key": list(t.key), **experiment.display(t.items)} for t in state.trials
            ],
            **extra,
        }
        return JSONResponse(body, headers=_NO_STORE)

    def session_of(request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        session_id = keys.session_of(token.strip()) if scheme.lower() == "bearer" else None
        if session_id is None:
            raise ApiError(401, "no valid session token")
        _limit(answers, session_id)
        if not book.has_session(session_id):
            raise ApiError(401, "no valid session token")
        return session_id

    def check_admin(request: Request) -> None:
        if admin is None:
            raise ApiError(404, "not found")
        if not admin.allows(request.headers.get("authorization", "")):
            raise ApiError(401, "no valid admin token", {"www-authenticate": "Bearer"})

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=_NO_STORE)

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            raise ApiError(404, "not found")
        return Response(static[name], media_type=kinds[name])

    async def media_file(request: Request) -> Response:
        medium = experiment.medium(request.path_params["number"])
        if medium is None or not medium.unchanged():  # a file swapped for a link since the start is not sent
            raise ApiError(404, "not found")
        return FileResponse(medium.path, media_type=medium.content_type, headers=_MEDIA_CACHE)

    async def flow_texts(request: Request) -> Response:
        return JSONResponse(texts, headers=_NO_STORE)

    async def start_session(request: Request) -> Response:
        # behind a trusted reverse proxy, uvicorn puts the X-Forwarded-For client here
        _limit(starts, request.client.host if request.client else "")
        body = await read_json(request)
        params = body.get("params", {})
        if body.get("consent") is not True:
            raise ApiError(422, "consent is required")
        if not isinstance(params, dict) or len(params) > MAX_PARAMS:
            raise ApiError(422, f"params must be an object of at most {MAX_PARAMS} URL parameters")
        who = arrival(params)
        participant = None if who.participant_id is None else keys.participant(who.platform, who.participant_id)
        fresh = new_session_id()
        session_id = book.open_session(
            fresh,
            n_trials=settings.trials_per_session,
            completion_code=settings.completion_code or keys.completion_code(fresh),
            participant=participant,
            platform=who.platform,
            study_ref=who.study_ref,
            session_ref=who.session_ref,
        )
        return state_json(book.lease(session_id), token=keys.token(session_id), practice=practice)

    async def resume_session(request: Request) -> Response:
        return state_json(book.lease(session_of(request)), practice=practice)

    async def answer(request: Request) -> Response:
        session_id = session_of(request)
        body = await read_json(request)
        # the lease book refuses an impossible choice, ranking, response time or input (InputError: 422)
        key = _trial_key(body.get("key"))
        state = book.answer(
            session_id, key, body.get("choice"), body.get("rt_ms"), body.get("input"), ranking=body.get("ranking")
        )
        if not state.done and not state.trials:
            state = book.lease(session_id)  # its other leases expired: new trials for the positions left
        return state_json(state)

    async def admin_index(request: Request) -> Response:
        if admin is None:
            raise ApiError(404, "not found")
        return HTMLResponse(admin_page, headers=_NO_STORE)

    async def summary(request: Request) -> Response:
        check_admin(request)
        found = await run_in_threadpool(admin_summary, book.store.path, design_sizes, settings)
        return JSONResponse(found, headers=_NO_STORE)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)  # browsers ask for one; none is not an error

    def api(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            try:
                return await endpoint(request)
            except ApiError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)
            except LeaseError as exc:
                status = 401 if str(exc) == "no such session" else 409
                return JSONResponse({"error": str(exc)}, status_code=status)
            except InputError as exc:
                return JSONResponse({"error": str(exc)}, status_code=422)

        return guarded

    routes = [
        Route("/", api(index), methods=["GET"]),
        Route("/static/{name}", api(static_file), methods=["GET"]),
        Route("/media/{number:int}", api(media_file), methods=["GET"]),
        Route("/api/texts", api(flow_texts), methods=["GET"]),
        Route("/api/session", api(start_session), methods=["POST"]),
        Route("/api/session", api(resume_session), methods=["GET"]),
        Route("/api/answer", api(answer), methods=["POST"]),
        Route("/admin", api(admin_index), methods=["GET"]),
        Route("/api/admin/summary", api(summary), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
