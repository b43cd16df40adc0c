"""An imitation of the platform (IBM watsonx.ai) for tests and benchmarks: a
threaded HTTP server on loopback that speaks the requests of
docs/platform.md, and nothing else.

    platform = PlatformServer(api_key="k-1", ready_after=0.3).start()
    settings.CFM_PLATFORM_URLS = [platform.url]       # url and iam_url both point here
    ...
    platform.requests                                 # every request: method, path, query, headers, body
    platform.stop()

Served:
- POST /identity/token (form grant_type + apikey) → {"access_token", "expires_in", ...};
  an unknown key → 400 as IAM answers it. A token is refused (401) once it
  has expired; `token_issued` says when each was given.
- /ml/v4/... needs `Authorization: Bearer <a token it gave>` (else 401) and
  `?version=` (else 400); a space in `forbidden_spaces` → 403.
- POST /ml/v4/models → 201 (`model_status`) {"metadata": {"id"}, "entity"}; DELETE /ml/v4/models/{id} → 204 / 404.
- POST /ml/v4/deployments → 202 (`deployment_status`)
  {"metadata": {"id"}, "entity": {"status": {"state": "initializing"}}};
  GET /ml/v4/deployments/{id} moves `initializing` → `ready` after `ready_after` seconds
  (with `entity.status.inference[0].url` unless `inference_url` is off);
  GET /ml/v4/deployments?space_id= lists them (`page_size` per page, `next.href`: `next_style`
  "full" a path with space_id, version and start, "start_only" a path with start alone,
  "absolute" the full URL);
  DELETE /ml/v4/deployments/{id} → 204 / 404.

Knobs: `poll_latency` (seconds before a deployment's GET answers), `reset()`,
`fail_deployment(message, code=, on="create"|"initializing", status=400)` fails the
next deployment (e.g. "insufficient resources", the account limit), `delete_behind(id)`
removes one behind cfm's back, `add_outside(serving_name, size)` creates one as another
tool would, `script(method, path_prefix, status, body, times, headers)` answers the next
matching requests as given (429/503 with Retry-After, ...).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object
    raw: bytes
    at: float
    #: the client's port (which process is asking: `ss -tnp sport = :PORT`)
    peer_port: int = 0


@dataclass
class _Scripted:
    method: str
    prefix: str
    status: int
    body: object
    times: int
    headers: dict = field(default_factory=dict)


class PlatformServer:
    def __init__(self, *, api_key: str = "test-api-key", space_id: str = "space-1", ready_after: float = 0.3,
                 token_ttl: int = 3600, page_size: int = 50, inference_url: bool = True):
        self.api_keys = {api_key}
        self.space_ids = {space_id}
        self.forbidden_spaces: set[str] = set()
        self.ready_after = ready_after
        self.token_ttl = token_ttl
        self.page_size = page_size
        self.inference_url = inference_url
        self.tokens: set[str] = set()
        #: token → (time.time() it was given, its expiry)
        self.token_issued: dict[str, tuple[float, float]] = {}
        #: the contract allows 201 or 202 for both creations
        self.model_status = 201
        self.deployment_status = 202
        self.next_style = "full"
        self.models: dict[str, dict] = {}
        self.deployments: dict[str, dict] = {}
        self.requests: list[Request] = []
        #: seconds slept before answering a deployment's GET (a slow platform)
        self.poll_latency = 0.0
        self._failures: list[dict] = []
        self._scripts: list[_Scripted] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> PlatformServer:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- knobs -------------------------------------------------------------------------------------------------
    def reset(self, *, api_key: str | None = None) -> None:
        """Forget everything (a session's server, shared by tests)."""
        with self.lock:
            self.models.clear()
            self.deployments.clear()
            self.requests.clear()
            self._failures.clear()
            self._scripts.clear()
            self.forbidden_spaces.clear()
            self.poll_latency = 0.0
            self.model_status, self.deployment_status, self.next_style = 201, 202, "full"
            if api_key is not None:
                self.api_keys = {api_key}

    def fail_deployment(self, message: str, *, code: str = "deployment_failed", on: str = "initializing",
                        status: int = 400) -> None:
        with self.lock:
            self._failures.append({"message": message, "code": code, "on": on, "status": status})

    def script(self, method: str, prefix: str, status: int, body: object = None, *, times: int = 1,
               headers: dict | None = None) -> None:
        with self.lock:
            self._scripts.append(_Scripted(method, prefix, status, body, times, headers or {}))

    def delete_behind(self, deployment_id: str) -> None:
        with self.lock:
            self.deployments.pop(deployment_id, None)

    def add_outside(self, serving_name: str, *, size: str = "gpu_m", space_id: str = "space-1",
                    state: str = "ready", time_series: bool = False) -> str:
        dep_id = str(uuid.uuid4())
        entity: dict = {"asset": {"id": str(uuid.uuid4())}, "name": serving_name, "space_id": space_id,
                        "online": {"parameters": {"serving_name": serving_name}}}
        if time_series:
            entity["hardware_spec"] = {"name": size, "num_nodes": 1}
        else:
            entity["hardware_request"] = {"size": size, "num_nodes": 1}
        with self.lock:
            self.deployments[dep_id] = {"id": dep_id, "entity": entity, "created": time.monotonic(),
                                        "fixed_state": state, "failure": None}
        return dep_id

    def calls(self, method: str | None = None, prefix: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)]

    # --- behaviour ---------------------------------------------------------------------------------------------
    def state(self, dep: dict) -> dict:
        if dep.get("fixed_state"):
            status: dict = {"state": dep["fixed_state"]}
        elif dep["failure"] is not None and dep["failure"]["on"] == "initializing":
            status = {"state": "failed", "failure": {"errors": [{"code": dep["failure"]["code"],
                                                                 "message": dep["failure"]["message"]}]}}
        elif time.monotonic() - dep["created"] >= self.ready_after:
            status = {"state": "ready"}
        else:
            status = {"state": "initializing"}
        if status["state"] == "ready" and self.inference_url:
            status["inference"] = [{"url": f"{self.url}/ml/v1/deployments/{dep['id']}/text/generation"}]
        return status

    def resource(self, dep: dict) -> dict:
        return {"metadata": {"id": dep["id"], "space_id": dep["entity"].get("space_id")},
                "entity": {**dep["entity"], "status": self.state(dep)}}


def _error(code: str, message: str) -> dict:
    return {"trace": uuid.uuid4().hex, "errors": [{"code": code, "message": message}]}


class _Handler(BaseHTTPRequestHandler):
    server_owner: PlatformServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self, status: int, body: object = None, headers: dict | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _handle(self) -> None:
        p = self.server_owner
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type") or ""
        body: object = None
        if ctype.startswith("application/x-www-form-urlencoded"):
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        with p.lock:
            p.requests.append(Request(self.command, parts.path, query, dict(self.headers.items()), body, raw,
                                      time.time(), self.client_address[1]))
            script = next((s for s in p._scripts if s.method == self.command and parts.path.startswith(s.prefix)),
                          None)
            if script is not None:
                script.times -= 1
                if script.times <= 0:
                    p._scripts.remove(script)
        if script is not None:
            self._answer(script.status, script.body, script.headers)
            return
        path = parts.path
        if path == "/identity/token" and self.command == "POST":
            return self._token(body)
        if not path.startswith("/ml/"):
            return self._answer(404, _error("not_found", f"no such path {path}"))
        auth = self.headers.get("Authorization") or ""
        issued = p.token_issued.get(auth[7:])
        if not auth.startswith("Bearer ") or auth[7:] not in p.tokens or (issued and issued[1] <= time.time()):
            return self._answer(401, _error("authentication_token_not_valid", "Authentication token is not valid"))
        if not query.get("version"):
            return self._answer(400, _error("missing_version", "Missing query parameter 'version'"))
        space = query.get("space_id") or (body.get("space_id") if isinstance(body, dict) else None)
        if space in p.forbidden_spaces:
            return self._answer(403, _error("authorization_rejected",
                                            f"user is not authorized to perform this action in space {space}"))
        if path == "/ml/v4/models" and self.command == "POST":
            return self._create_model(body)
        if path.startswith("/ml/v4/models/") and self.command == "DELETE":
            with p.lock:
                gone = p.models.pop(path.rsplit("/", 1)[1], None)
            return self._answer(204) if gone else self._answer(404, _error("not_found", "model not found"))
        if path == "/ml/v4/deployments" and self.command == "POST":
            return self._create_deployment(body)
        if path == "/ml/v4/deployments" and self.command == "GET":
            return self._list(query)
        if path.startswith("/ml/v4/deployments/"):
            dep_id = path.rsplit("/", 1)[1]
            with p.lock:
                dep = p.deployments.get(dep_id)
                if self.command == "DELETE":
                    p.deployments.pop(dep_id, None)
            if dep is None:
                return self._answer(404, _error("deployment_not_found", f"deployment {dep_id} not found"))
            if self.command == "DELETE":
                return self._answer(204)
            if p.poll_latency:
                time.sleep(p.poll_latency)
            return self._answer(200, p.resource(dep))
        return self._answer(404, _error("not_found", f"no such path {path}"))

    def _token(self, body) -> None:
        p = self.server_owner
        if not isinstance(body, dict) or body.get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey":
            return self._answer(400, {"errorCode": "BXNIM0103E", "errorMessage": "grant_type is missing"})
        if body.get("apikey") not in p.api_keys:
            return self._answer(400, {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found.",
                                      "context": {}})
        token = "tok-" + uuid.uuid4().hex
        with p.lock:
            p.tokens.add(token)
            p.token_issued[token] = (time.time(), time.time() + p.token_ttl)
        self._answer(200, {"access_token": token, "refresh_token": "not_supported", "token_type": "Bearer",
                           "expires_in": p.token_ttl, "expiration": int(time.time()) + p.token_ttl, "scope": "ibm"})

    def _create_model(self, body) -> None:
        p = self.server_owner
        if not isinstance(body, dict) or body.get("space_id") not in p.space_ids:
            return self._answer(400, _error("invalid_input", "space_id is missing or unknown"))
        model_id = str(uuid.uuid4())
        with p.lock:
            p.models[model_id] = body
        self._answer(p.model_status, {"metadata": {"id": model_id, "space_id": body["space_id"],
                                                   "name": body.get("name")},
                                      "entity": {k: v for k, v in body.items() if k not in ("name", "space_id")}})

    def _create_deployment(self, body) -> None:
        p = self.server_owner
        if not isinstance(body, dict) or body.get("space_id") not in p.space_ids:
            return self._answer(400, _error("invalid_input", "space_id is missing or unknown"))
        asset = (body.get("asset") or {}).get("id")
        if asset not in p.models:
            return self._answer(400, _error("invalid_input", f"asset {asset} does not exist"))
        with p.lock:
            failure = p._failures.pop(0) if p._failures else None
        if failure is not None and failure["on"] == "create":
            return self._answer(failure["status"], _error(failure["code"], failure["message"]))
        dep_id = str(uuid.uuid4())
        dep = {"id": dep_id, "entity": body, "created": time.monotonic(), "failure": failure, "fixed_state": None}
        with p.lock:
            p.deployments[dep_id] = dep
        self._answer(p.deployment_status, {"metadata": {"id": dep_id, "space_id": body["space_id"]},
                           "entity": {**body, "status": {"state": "initializing"}}})

    def _list(self, query: dict) -> None:
        p = self.server_owner
        if not query.get("space_id") and not query.get("project_id"):
            # as the platform answers a listing that names neither
            return self._answer(400, _error("missing_space_or_project", "Either space_id or project_id has to be "
                                                                        "provided."))
        start = int(query.get("start") or 0)
        with p.lock:
            deps = [d for d in p.deployments.values() if d["entity"].get("space_id") == query.get("space_id")]
        page = deps[start:start + p.page_size]
        body: dict = {"resources": [p.resource(d) for d in page], "total_count": len(deps)}
        if start + p.page_size < len(deps):
            nxt = start + p.page_size
            href = f"/ml/v4/deployments?space_id={query.get('space_id')}&version={query.get('version')}&start={nxt}"
            if p.next_style == "start_only":
                href = f"/ml/v4/deployments?start={nxt}"
            elif p.next_style == "absolute":
                href = p.url + href
            body["next"] = {"href": href}
        self._answer(200, body)

    do_GET = do_POST = do_DELETE = do_PUT = _handle
