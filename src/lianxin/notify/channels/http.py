"""POST JSON with the standard library, and sort failures into transient and permanent."""

import json
import urllib.error
import urllib.request

from lianxin.notify.channels import TransportError

TIMEOUT = 10  # seconds: a stuck receiver must not hold the worker


def post_json(url: str, payload, headers: dict | None = None, body: bytes | None = None) -> str:
    data = body if body is not None else json.dumps(payload, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/json; charset=utf-8")
    req.add_header("User-Agent", "lianxin-notify")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            text = resp.read(2000).decode("utf-8", "replace")
            return f"{resp.status} {text[:200]}"
    except urllib.error.HTTPError as exc:
        excerpt = exc.read(300).decode("utf-8", "replace")
        # 408 and 429 say "try later"; other 4xx mean the request itself is wrong.
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise TransportError(f"HTTP {exc.code} {excerpt[:200]}", permanent=permanent) from exc
    except ValueError as exc:  # a malformed URL
        raise TransportError(f"bad URL {url!r}: {exc}", permanent=True) from exc
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        raise TransportError(f"connection failed: {exc}") from exc


def vendor_result(response: str, code_field: str, ok=0) -> str:
    """The robots answer 200 with an error code in the body; a non-zero code is permanent
    (bad key, bad signature, keyword not allowed) except their rate limits."""
    try:
        body = json.loads(response.split(" ", 1)[1])
    except (IndexError, ValueError):
        return response
    code = body.get(code_field, ok) if isinstance(body, dict) else ok
    if code not in (ok, None):
        rate_limited = code in (45009, 130101, 11232, 9499)
        raise TransportError(f"{code_field}={code}: {response[:200]}", permanent=not rate_limited)
    return response
