"""The platform's REST client: exactly the requests of
shared/docs/platform-api.md, nothing else (`ibm-watsonx-ai` cannot be
pointed at a test server, so the requests are spelt out here).

- An IAM token per API key, reused until a minute before it expires.
- 429 and 5xx (and a connection that fails) are retried with backoff,
  honouring `Retry-After`; then PlatformError("unavailable").
- Every other answer is final: PlatformError with a `kind` the tracking
  maps to the user's message (api_key_refused, forbidden, rejected,
  insufficient_resources, limit, not_found).
"""
from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import requests

#: any fixed date: the platform answers with the API of that date
VERSION = "2025-07-03"
GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
#: a token is replaced this long before it expires
TOKEN_MARGIN = 60
#: the account's own limit: a code naming a limit or quota, or words tying a limit to deployments, the
#: account, its plan or instance (a parameter "exceeds the limit of 4096" is an ordinary refusal)
_LIMIT_CODE_RE = re.compile(r"limit|quota", re.I)
_LIMIT_RE = re.compile(r"\bquotas?\b"
                       r"|\b(deployments?|account|instance|plan|capacity|units?)\b[^.;]{0,60}\blimits?\b"
                       r"|\blimits?\b[^.;]{0,60}\b(deployments?|account|instance|plan|capacity|units?)\b", re.I)
_INSUFFICIENT_RE = re.compile(r"insufficient[ _]resources", re.I)


class PlatformError(Exception):
    """A final answer of the platform (or IAM) that is not a success.

    kind: api_key_refused | forbidden | rejected | insufficient_resources |
    limit | not_found | unavailable | bad_answer."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(message)
        self.kind, self.message, self.status, self.code = kind, message, status, code


def classify(message: str, code: str = "") -> str:
    """What a refusal's words mean for the user: the platform's own limit,
    a lack of resources for the size asked, or another refusal."""
    if _INSUFFICIENT_RE.search(message) or _INSUFFICIENT_RE.search(code):
        return "insufficient_resources"
    limit_code = bool(_LIMIT_CODE_RE.search(code)) and not re.search(r"param|invalid", code, re.I)
    if limit_code or _LIMIT_RE.search(message):
        return "limit"
    return "rejected"


def first_error(body) -> tuple[str, str]:
    """(code, message) of the platform's `errors[0]`, or of a deployment's
    `entity.status.failure.errors[0]`."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if not isinstance(errors, list):
            failure = (((body.get("entity") or {}).get("status") or {}).get("failure") or {})
            errors = failure.get("errors") if isinstance(failure, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code") or ""), str(errors[0].get("message") or "")
        for key in ("message", "errorMessage", "error_description"):
            if isinstance(body.get(key), str):
                return str(body.get("code") or body.get("errorCode") or ""), body[key]
    return "", ""


_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def forget_tokens() -> None:
    with _tokens_lock:
        _tokens.clear()


@dataclass
class PlatformClient:
    url: str
    iam_url: str
    api_key: str
    space_id: str
    timeout: float = 30.0
    #: attempts of a request that meets 429/5xx or a failed connection
    attempts: int = 5
    #: first wait (s) when no Retry-After says otherwise; then doubling, with jitter
    backoff: float = 1.0
    max_wait: float = 60.0

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.iam_url = self.iam_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        #: every request sent: (method, url) — for operators and the benchmark
        self.sent = 0

    # --- transport -------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        """One request, retried while the platform is unavailable."""
        last = ""
        for attempt in range(self.attempts):
            try:
                self.sent += 1
                response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False,
                                                **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = type(exc).__name__
                wait = None
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                last = f"HTTP {response.status_code}"
                wait = _retry_after(response.headers.get("Retry-After"))
            if attempt + 1 >= self.attempts:
                break
            if wait is None:
                wait = self.backoff * 2 ** attempt * (0.5 + random.random() / 2)
            time.sleep(min(wait, self.max_wait))
        raise PlatformError("unavailable", f"the platform is unavailable ({last})")

    def token(self) -> str:
        key = (self.iam_url, hashlib.sha256(self.api_key.encode()).hexdigest())
        now = time.monotonic()
        with _tokens_lock:
            cached = _tokens.get(key)
        if cached and cached[1] - TOKEN_MARGIN > now:
            return cached[0]
        # The contract puts `version` on every request, the token's too (IAM ignores it).
        response = self._send("POST", f"{self.iam_url}/identity/token", params={"version": VERSION},
                              data={"grant_type": GRANT_TYPE, "apikey": self.api_key},
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        if response.status_code in (400, 401, 403):
            raise PlatformError("api_key_refused", "the API key was refused", status=response.status_code)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            raise PlatformError("bad_answer", f"IAM answered {response.status_code} without a token",
                                status=response.status_code)
        try:
            expires_in = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        with _tokens_lock:
            _tokens[key] = (str(body["access_token"]), now + expires_in)
        return str(body["access_token"])

    def call(self, method: str, path_or_url: str, *, params: dict | None = None, json: dict | None = None,
             ok: tuple[int, ...] = (200, 201, 202)) -> tuple[int, object]:
        """An /ml/ request with the bearer token and `version`; (status, body)
        for an `ok` status, else PlatformError."""
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url + path_or_url
        query = dict(params or {})
        if "version=" not in url:
            query["version"] = VERSION
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = self._send(method, url, params=query, json=json, headers=headers)
        if response.status_code == 401:
            # A token revoked before its time: one fresh token, then the answer stands.
            forget_tokens()
            headers = {"Authorization": f"Bearer {self.token()}"}
            response = self._send(method, url, params=query, json=json, headers=headers)
        body = _json(response)
        if response.status_code in ok:
            return response.status_code, body
        code, message = first_error(body)
        if response.status_code in (401, 403):
            raise PlatformError("forbidden", message or f"HTTP {response.status_code}", status=response.status_code,
                                code=code)
        if response.status_code == 404:
            raise PlatformError("not_found", message or "not found", status=404, code=code)
        message = message or f"the platform answered {response.status_code}"
        raise PlatformError(classify(message, code), message, status=response.status_code, code=code)

    # --- the contract's requests ----------------------------------------------------------------------
    def create_model(self, body: dict) -> str:
        _status, answer = self.call("POST", "/ml/v4/models", json=body, ok=(200, 201, 202))
        return _id(answer)

    def create_deployment(self, body: dict) -> str:
        _status, answer = self.call("POST", "/ml/v4/deployments", json=body, ok=(200, 201, 202))
        return _id(answer)

    def get_deployment(self, deployment_id: str) -> dict:
        _status, answer = self.call("GET", f"/ml/v4/deployments/{deployment_id}",
                                    params={"space_id": self.space_id}, ok=(200,))
        if not isinstance(answer, dict):
            raise PlatformError("bad_answer", "the platform's deployment is not a JSON object")
        return answer

    def list_deployments(self) -> list[dict]:
        """Every deployment of the space, following `next.href` (only within
        this platform URL: a link elsewhere is not followed)."""
        items: list[dict] = []
        url: str | None = "/ml/v4/deployments"
        params: dict | None = {"space_id": self.space_id}
        seen: set[str] = set()
        for _page in range(1000):
            if url is None:
                break
            _status, answer = self.call("GET", url, params=params, ok=(200,))
            if not isinstance(answer, dict) or not isinstance(answer.get("resources"), list):
                raise PlatformError("bad_answer", "the platform's deployment list has no resources")
            items.extend(r for r in answer["resources"] if isinstance(r, dict))
            nxt = (answer.get("next") or {}).get("href") if isinstance(answer.get("next"), dict) else None
            url, params = None, None
            if isinstance(nxt, str) and nxt.strip():
                url = self._next_page(nxt.strip())
                if url in seen:
                    raise PlatformError("bad_answer", "the platform's deployment list links back to a page it gave")
                seen.add(url)
        return items

    def _next_page(self, href: str) -> str:
        """A listing's `next.href` (a path or a full URL) as a URL on this
        platform: the host is always the connection's (never one a link
        names), and the space and version the link may leave out are added
        (a listing without them is refused). Stopping short instead would
        make the sync take the deployments of the later pages for gone."""
        link = urlsplit(urljoin(self.url + "/", href))
        base = urlsplit(self.url)
        query = parse_qs(link.query, keep_blank_values=True)
        if "space_id" not in query and "project_id" not in query:
            query["space_id"] = [self.space_id]
        if "version" not in query:
            query["version"] = [VERSION]
        return urlunsplit((base.scheme, base.netloc, link.path or "/ml/v4/deployments", urlencode(query, doseq=True),
                           ""))

    def delete_deployment(self, deployment_id: str) -> None:
        """Done on 204 or 404 (already gone)."""
        try:
            self.call("DELETE", f"/ml/v4/deployments/{deployment_id}", params={"space_id": self.space_id},
                      ok=(200, 202, 204))
        except PlatformError as exc:
            if exc.kind != "not_found":
                raise

    def delete_model(self, asset_id: str) -> None:
        try:
            self.call("DELETE", f"/ml/v4/models/{asset_id}", params={"space_id": self.space_id},
                      ok=(200, 202, 204))
        except PlatformError as exc:
            if exc.kind != "not_found":
                raise


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _id(answer) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("metadata"), dict) and answer["metadata"].get("id"):
        return str(answer["metadata"]["id"])
    raise PlatformError("bad_answer", "the platform's answer has no metadata.id")


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def state_of(resource: dict) -> str:
    return str((((resource.get("entity") or {}).get("status") or {}).get("state")) or "")
