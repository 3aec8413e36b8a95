"""POST /api/v1/readings and GET /api/openapi.json.

Answers (all JSON): 200 the batch is durable (some rows may be rejected: see `errors`); 422 every
row was rejected, or an Idempotency-Key was reused for a different body; 400 the body is not
readable JSON/CSV; 401 no valid token; 413 body too large; 415 unsupported Content-Type;
503 the stores could not take the batch (nothing is promised: send it again).
"""

import hashlib
import json
import logging
import threading
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from lianxin import health
from lianxin.ingest.api.intake import Intake, PartlyStored
from lianxin.ingest.api.models import ApiToken, PushedBatch, hash_token
from lianxin.ingest.api.rows import MAX_ROWS, UNITS, BodyError, TooManyRows, parse_csv, parse_json

log = logging.getLogger(__name__)
SCHEMA_PATH = Path(__file__).with_name("openapi.json")
# With MAX_ROWS, bounds the work and memory of one request (see bench/ingest_http_bad.py).
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_KEY_LENGTH = 200
KEEP_BATCHES = timedelta(days=7)
# last_used_at is for people ("is this source still sending?"): once a minute is precise enough
# and spares the database a write per batch.
TOUCH_EVERY = timedelta(minutes=1)

_intake: Intake | None = None
_intake_lock = threading.Lock()
# Serialises batches that share an Idempotency-Key within this process, so a client that
# retries before the first answer arrives gets the first answer, not a second write.
_key_locks: dict[tuple[int, str], tuple[threading.Lock, int]] = {}
_key_locks_guard = threading.Lock()
_purge_counter = 0


def intake() -> Intake:
    global _intake
    with _intake_lock:
        if _intake is None:
            _intake = Intake()
        return _intake


def _error(status: int, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="lianxin"'
    return response


def _unavailable(what: str) -> JsonResponse:
    response = _error(
        503,
        f"{what}: the server cannot take batches just now; nothing of it was stored. "
        "Send it again later with the same Idempotency-Key",
    )
    response["Retry-After"] = "30"
    return response


def authenticate(request) -> ApiToken | JsonResponse:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _error(401, "send an API token as 'Authorization: Bearer <token>'")
    token = ApiToken.objects.filter(token_hash=hash_token(raw.strip())).first()
    if token is None:
        return _error(401, "unknown API token")
    if token.revoked_at is not None:
        return _error(401, f"API token {token.prefix}… was revoked on {token.revoked_at:%Y-%m-%d}")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    health.seen("token", token.name, now)  # its usual gap is learned; silence is an alert
    return token


@csrf_exempt
def readings(request):
    try:
        return _readings(request)
    except DatabaseError:
        # E.g. SQLite locked past its timeout while checking an Idempotency-Key: nothing of
        # the batch was stored yet (a stored batch answers even if remembering its key fails).
        log.exception("database error on a pushed batch")
        return _unavailable("the database is busy")


def _readings(request):
    if request.method != "POST":
        response = _error(405, "POST a batch of readings here; the schema is at /api/openapi.json")
        response["Allow"] = "POST"
        return response
    try:
        token = authenticate(request)
    except DatabaseError:
        # A locked or unreachable database is the server's trouble, not the sender's: the
        # documented 503, so the sender retries, never an HTML 500.
        log.exception("could not check an API token")
        return _unavailable("the token could not be checked")
    if isinstance(token, JsonResponse):
        return token
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "Content-Length is not a number")
    if length > MAX_BODY_BYTES:
        return _error(413, f"body is {length} bytes; send at most {MAX_BODY_BYTES} per batch")
    content_type = request.content_type or ""
    if length == 0:
        return _error(400, "the body is empty: send a batch of readings as JSON or CSV")
    if content_type not in ("application/json", "text/csv"):
        return _error(
            415,
            f"Content-Type {content_type or '(none)'!r} is not supported: "
            "send application/json or text/csv",
        )
    key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
    if len(key) > MAX_KEY_LENGTH:
        return _error(400, f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    # Read the stream ourselves: request.body would refuse bodies above Django's 2.5 MB form limit.
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body is larger than {MAX_BODY_BYTES} bytes: send smaller batches")
    unit = request.GET.get("unit")
    if unit is not None and unit not in UNITS:
        return _error(400, f"unit={unit!r} is not one of {', '.join(UNITS)}")
    charset = request.content_params.get("charset")
    if not key:
        return _take(token, body, content_type, charset, unit, key="")
    digest = hashlib.sha256(f"{content_type};{charset}\n".encode() + body).hexdigest()
    lock = _key_lock(token.pk, key, +1)
    try:
        with lock:
            earlier = _replay(token, key, digest)
            if earlier is not None:
                return earlier
            response = _take(token, body, content_type, charset, unit, key=key)
            if response.status_code in (200, 422):
                try:
                    _remember(token, key, digest, response)
                except DatabaseError:
                    # The batch is durable; a re-send is deduplicated by the store instead.
                    log.exception("could not remember Idempotency-Key %r", key)
            return response
    finally:
        _key_lock(token.pk, key, -1)


def _key_lock(token_id: int, key: str, delta: int) -> threading.Lock:
    """The lock of one (token, key), kept only while some request holds or waits for it."""
    with _key_locks_guard:
        lock, users = _key_locks.get((token_id, key), (None, 0))
        if lock is None:
            lock = threading.Lock()
        users += delta
        if users:
            _key_locks[(token_id, key)] = (lock, users)
        else:
            _key_locks.pop((token_id, key), None)
        return lock


def _take(token, body, content_type, charset, unit, key) -> JsonResponse:
    parse_args = {"meter_kinds": intake().meter_kinds, "time_zone": settings.TIME_ZONE}
    try:
        if content_type == "text/csv":
            parsed = parse_csv(body, default_unit=unit, charset=charset, **parse_args)
        else:
            if unit is not None:
                return _error(400, "?unit= is for CSV bodies; in JSON give a top-level 'unit'")
            parsed = parse_json(body, **parse_args)
    except TooManyRows as exc:
        return _error(413, str(exc), max_rows=MAX_ROWS)
    except BodyError as exc:
        return _error(400, str(exc))
    except DatabaseError:
        log.exception("could not look up the meters of a pushed batch")
        return _unavailable("the batch could not be checked")
    except Exception:  # noqa: BLE001 - a body no check foresaw is still the sender's: 400, logged
        log.exception("a pushed body could not be read")
        return _error(400, "body could not be read as a batch of readings and events")
    where = "line in the CSV body" if content_type == "text/csv" else "row index in the batch"
    try:
        outcome = intake().take(
            parsed,
            source=f"http push from {token.name}",
            description=f"HTTP batch{f' (Idempotency-Key {key})' if key else ''}; line = {where}",
        )
    except PartlyStored as exc:
        log.exception("a pushed batch was stored only in part")
        response = _error(
            503,
            f"the batch was stored only in part ({' and '.join(exc.stored)}: see 'stored'); "
            "send the whole batch again later with the same Idempotency-Key: what was stored "
            "counts as duplicate",
            stored=exc.to_dict(),
        )
        response["Retry-After"] = "30"
        return response
    except Exception as exc:  # noqa: BLE001 - the sender must learn that nothing is promised
        # The details (paths, the exception) go to the log for the operator; the sender gets
        # the kind of trouble only (e.g. "No space left on device"), never a path.
        log.exception("could not store a pushed batch")
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a store error"
        return _unavailable(f"the batch could not be stored ({why})")
    answer = outcome.to_dict()
    status = 422 if outcome.rejected == outcome.received else 200
    return JsonResponse(answer, status=status, json_dumps_params={"ensure_ascii": False})


def _replay(token, key, digest) -> JsonResponse | None:
    batch = PushedBatch.objects.filter(token=token, key=key).first()
    if batch is None:
        return None
    if batch.body_sha256 != digest:
        return _error(
            422,
            f"Idempotency-Key {key!r} was already used on {batch.created_at:%Y-%m-%d %H:%M:%S} "
            "UTC for a different body: use a new key for a new batch",
        )
    response = JsonResponse(
        batch.response, status=batch.status, json_dumps_params={"ensure_ascii": False}
    )
    response["Idempotent-Replayed"] = "true"
    return response


def _remember(token, key, digest, response):
    global _purge_counter
    try:
        with transaction.atomic():
            PushedBatch.objects.create(
                token=token,
                key=key,
                body_sha256=digest,
                status=response.status_code,
                response=json.loads(response.content),
            )
    except IntegrityError:
        pass  # another process answered the same key first; the store kept one copy
    _purge_counter += 1
    if _purge_counter % 500 == 1:
        PushedBatch.objects.filter(created_at__lt=timezone.now() - KEEP_BATCHES).delete()


@csrf_exempt  # it changes nothing; other methods get the API's JSON 405, not the CSRF page
def openapi(request):
    if request.method not in ("GET", "HEAD"):
        # JSON like every answer of the API (require_GET would answer in HTML).
        response = _error(405, "GET the OpenAPI document here")
        response["Allow"] = "GET, HEAD"
        return response
    return HttpResponse(SCHEMA_PATH.read_bytes(), content_type="application/json")
