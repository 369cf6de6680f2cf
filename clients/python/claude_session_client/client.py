"""A small, typed client for claude-session-server, on the standard library alone.

    from claude_session_client import Client

    client = Client("http://127.0.0.1:8000", api_key="...")
    session = client.create_session(prompt="Remember: my favorite color is blue")
    turn = client.run_turn(session["session_id"], "What is my favorite color?")
    for event in client.stream_turn(session["session_id"], "And again?"):
        print(event.event, event.data)

Every error the server answers is an :class:`ApiError` carrying ``status``, ``code`` and
``request_id``. Streams resume after a dropped connection with ``Last-Event-ID``: no event is
lost or repeated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, TypedDict, Union

__all__ = [
    "ApiError",
    "Client",
    "Event",
    "PermissionRequest",
    "Session",
    "Turn",
    "verify_webhook",
]

TurnStatus = Literal["queued", "running", "succeeded", "failed", "interrupted", "cancelled"]
IfBusy = Literal["reject", "queue", "interrupt"]


class TurnError(TypedDict):
    code: str
    message: str


class Turn(TypedDict, total=False):
    turn_id: str
    session_id: str
    status: TurnStatus
    prompt: str
    result: Optional[str]
    error: Optional[TurnError]
    created_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    duration_ms: Optional[int]
    cost_usd: Optional[float]
    usage: Optional[Dict[str, Any]]
    structured_output: Any


class Session(TypedDict, total=False):
    session_id: str
    user_id: str
    session_name: Optional[str]
    status: Literal["active", "archived", "deleted"]
    project: str
    cwd: str
    created_at: str
    last_active: str
    turn_count: int
    total_cost_usd: float
    running_turn_id: Optional[str]
    permission_mode: str
    model: Optional[str]
    agent_id: Optional[str]
    agent_version: Optional[int]
    turn: Optional[Turn]


class PermissionRequest(TypedDict, total=False):
    request_id: str
    session_id: str
    turn_id: str
    tool_name: str
    input: Dict[str, Any]
    suggestions: List[Any]
    status: str
    expires_at: Optional[str]


@dataclass(frozen=True)
class Event:
    """One server-sent event: ``id`` is the session's event number (None for a final summary sent without one)."""

    id: Optional[int]
    event: str
    data: Any


class ApiError(Exception):
    """An error the server answered (4xx/5xx), or a stream that could not be resumed (status 0)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: Optional[str] = None,
        details: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details
        self.retry_after = retry_after


# Connection failures after which a stream is resumed rather than given up.
_DROPPED = (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError, urllib.error.URLError)


class Client:
    """A client for one server. ``api_key`` is sent as ``Authorization: Bearer``; omit it on a single-user server."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        stream_timeout: float = 60.0,
        reconnect_for: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        # A stream gets a heartbeat at least every 15 s: 60 s of silence means the connection is gone.
        self.stream_timeout = stream_timeout
        # How long a dropped stream is tried again (a server restarting, a proxy answering 502/503).
        self.reconnect_for = reconnect_for

    # -- plumbing -------------------------------------------------------------------------------

    def _url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        q = {k: ("true" if v is True else "false" if v is False else v) for k, v in (query or {}).items() if v is not None}
        return self.base_url + path + ("?" + urllib.parse.urlencode(q) if q else "")

    def _headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h = {"accept": "application/json", "user-agent": "claude-session-client-python"}
        if self.api_key:
            h["authorization"] = f"Bearer {self.api_key}"
        h.update(extra or {})
        return h

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> http.client.HTTPResponse:
        data = None if body is None else json.dumps(body).encode()
        h = self._headers(headers)
        if data is not None:
            h["content-type"] = "application/json"
        req = urllib.request.Request(self._url(path, query), data=data, method=method, headers=h)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)  # noqa: S310 (the caller's server)
        except urllib.error.HTTPError as e:
            raise _api_error(e) from None

    def _json(self, method: str, path: str, body: Any = None, query: Optional[Mapping[str, Any]] = None) -> Any:
        with self._open(method, path, body, query) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    # -- sessions -------------------------------------------------------------------------------

    def create_session(
        self,
        *,
        prompt: Optional[str] = None,
        project: Optional[str] = None,
        session_name: Optional[str] = None,
        permission_mode: Optional[str] = None,
        model: Optional[str] = None,
        system_prompt: Optional[str] = None,
        agent_id: Optional[str] = None,
        wait: bool = True,
        **options: Any,
    ) -> Session:
        """Creates a session; with ``prompt`` its first turn runs (waited for unless ``wait=False``): see ``session["turn"]``."""
        body = _compact(
            prompt=prompt,
            project=project,
            session_name=session_name,
            permission_mode=permission_mode,
            model=model,
            system_prompt=system_prompt,
            agent_id=agent_id,
            **options,
        )
        session = self._json("POST", "/v1/sessions", body, {"wait": False})
        # Waited for on the turn's event stream (heartbeats keep it open however long the turn runs).
        if wait and session.get("turn") and session["turn"]["status"] in ("queued", "running"):
            session["turn"] = self.wait_for_turn(session["session_id"], session["turn"]["turn_id"])
            session.update({k: v for k, v in self.get_session(session["session_id"]).items() if k != "turn"})
        return session

    def list_sessions(
        self,
        *,
        q: Optional[str] = None,
        status: Optional[str] = None,
        project: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """One page: ``{"sessions": [...], "next_cursor": ...}``, newest activity first."""
        return self._json("GET", "/v1/sessions", query={"q": q, "status": status, "project": project, "limit": limit, "cursor": cursor})

    def iter_sessions(self, **filters: Any) -> Iterator[Session]:
        """Every session matching the filters, page after page."""
        cursor = None
        while True:
            page = self.list_sessions(cursor=cursor, **filters)
            yield from page["sessions"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def get_session(self, session_id: str) -> Session:
        return self._json("GET", f"/v1/sessions/{_seg(session_id)}")

    def update_session(self, session_id: str, **fields: Any) -> Session:
        """``session_name``, ``status`` (``active``/``archived``), ``tag``."""
        return self._json("PATCH", f"/v1/sessions/{_seg(session_id)}", _compact(**fields))

    def delete_session(self, session_id: str, *, purge: bool = False) -> Session:
        return self._json("DELETE", f"/v1/sessions/{_seg(session_id)}", query={"purge": purge or None})

    def fork_session(self, session_id: str, *, up_to_message_id: Optional[str] = None, session_name: Optional[str] = None) -> Session:
        return self._json("POST", f"/v1/sessions/{_seg(session_id)}/fork", _compact(up_to_message_id=up_to_message_id, session_name=session_name))

    def messages(self, session_id: str, *, limit: int = 100, offset: int = 0) -> Dict[str, Any]:
        return self._json("GET", f"/v1/sessions/{_seg(session_id)}/messages", query={"limit": limit, "offset": offset})

    # -- turns ----------------------------------------------------------------------------------

    def run_turn(
        self,
        session_id: str,
        prompt: Union[str, List[Dict[str, Any]]],
        *,
        if_busy: Optional[IfBusy] = None,
        permission_mode: Optional[str] = None,
        output_schema: Optional[Dict[str, Any]] = None,
        wait: bool = True,
    ) -> Turn:
        """Runs a prompt: the finished Turn, or with ``wait=False`` the queued or running one at once."""
        body = _compact(prompt=prompt, if_busy=if_busy, permission_mode=permission_mode, output_schema=output_schema)
        turn: Turn = self._json("POST", f"/v1/sessions/{_seg(session_id)}/turns", body, {"wait": False})
        # Waited for on the turn's event stream, not a request held open (a turn may run longer than any HTTP timeout).
        return self.wait_for_turn(session_id, turn["turn_id"]) if wait else turn

    def stream_turn(
        self,
        session_id: str,
        prompt: Union[str, List[Dict[str, Any]]],
        *,
        if_busy: Optional[IfBusy] = None,
        permission_mode: Optional[str] = None,
        output_schema: Optional[Dict[str, Any]] = None,
    ) -> Iterator[Event]:
        """Runs a prompt and yields its events until ``done``; a dropped connection is resumed where it broke."""
        body = _compact(prompt=prompt, if_busy=if_busy, permission_mode=permission_mode, output_schema=output_schema)
        resp = self._open("POST", f"/v1/sessions/{_seg(session_id)}/turns/stream", body, headers={"accept": "text/event-stream"}, timeout=self.stream_timeout)
        turn_id: Optional[str] = None
        last: Optional[int] = None
        try:
            for e in _read_events(resp):
                if turn_id is None and isinstance(e.data, dict):
                    turn_id = e.data.get("turn_id")
                if e.id is not None:
                    last = e.id
                yield e
                if e.event == "done":
                    return
        except _DROPPED:
            pass
        finally:
            resp.close()
        if turn_id is None:
            raise ApiError(0, "STREAM_LOST", "the stream ended before the turn's first event; its id is unknown")
        yield from self.turn_events(session_id, turn_id, after=last)

    def turn_events(self, session_id: str, turn_id: str, *, after: Optional[int] = None) -> Iterator[Event]:
        """A turn's events after ``after`` (all of them when None), then live until it ends; resumed after a dropped connection."""
        return self._follow(f"/v1/sessions/{_seg(session_id)}/turns/{_seg(turn_id)}/events", after, until_done=True)

    def session_events(self, session_id: str, *, after: Optional[int] = None) -> Iterator[Event]:
        """Every event of every turn of the session after ``after``, then live (endless; close the generator to stop)."""
        return self._follow(f"/v1/sessions/{_seg(session_id)}/events", after, until_done=False)

    def _follow(self, path: str, after: Optional[int], until_done: bool) -> Iterator[Event]:
        last = after
        failing_since: Optional[float] = None
        failures = 0

        def retry(err: BaseException) -> None:
            # Dropped, cut short, or refused for a moment (restart, proxy): tried again for reconnect_for seconds.
            nonlocal failing_since, failures
            now = time.monotonic()
            failing_since = failing_since or now
            failures += 1
            if now - failing_since > self.reconnect_for:
                raise ApiError(0, "STREAM_LOST", f"the stream could not be resumed for {self.reconnect_for:.0f} s: {err}") from err
            time.sleep(min(0.2 * 2**failures, 5.0))

        while True:
            headers = {"accept": "text/event-stream"}
            if last is not None:
                headers["last-event-id"] = str(last)
            try:
                resp = self._open("GET", path, headers=headers, timeout=self.stream_timeout)
            except ApiError as e:
                if e.status not in (502, 503, 504):
                    raise
                retry(e)
                continue
            except _DROPPED as e:
                retry(e)
                continue
            if resp.status == 204:  # nothing more: the client already has the turn's end
                resp.close()
                return
            try:
                for e in _read_events(resp):
                    failing_since, failures = None, 0
                    if e.id is not None:
                        last = e.id
                    yield e
                    if until_done and e.event == "done":
                        return
                # Ended without the turn's done (the server stopped, a proxy cut it): resumed.
                retry(ConnectionError("the stream ended early"))
            except _DROPPED as err:
                retry(err)
            finally:
                resp.close()

    def get_turn(self, session_id: str, turn_id: str) -> Turn:
        return self._json("GET", f"/v1/sessions/{_seg(session_id)}/turns/{_seg(turn_id)}")

    def list_turns(self, session_id: str, *, status: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        return self._json("GET", f"/v1/sessions/{_seg(session_id)}/turns", query={"status": status, "limit": limit, "cursor": cursor})

    def cancel_turn(self, session_id: str, turn_id: str) -> Turn:
        """Cancels a queued turn (409 ``TURN_NOT_CANCELLABLE`` once it runs: interrupt it instead)."""
        return self._json("DELETE", f"/v1/sessions/{_seg(session_id)}/turns/{_seg(turn_id)}")

    def interrupt(self, session_id: str) -> Any:
        """Stops the running turn (it ends ``interrupted``); 409 ``NO_RUNNING_TURN`` when none runs."""
        return self._json("POST", f"/v1/sessions/{_seg(session_id)}/interrupt")

    def wait_for_turn(self, session_id: str, turn_id: str, *, timeout: Optional[float] = None) -> Turn:
        """The turn once it has ended (read from its event stream, not polled); ``timeout`` is checked as events arrive."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for e in self.turn_events(session_id, turn_id):
            if e.event == "done":
                return e.data
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"turn {turn_id} did not end within {timeout} s")
        return self.get_turn(session_id, turn_id)

    def query(self, query: str, *, session_id: Optional[str] = None, project: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
        """The original contract: ``{session_id, turn_id, result, ...}`` (a new session when ``session_id`` is None)."""
        r: Dict[str, Any] = self._json("POST", "/v1/query", _compact(query=query, session_id=session_id, project=project, **fields), {"wait": False})
        if r.get("status") in ("queued", "running"):
            t = self.wait_for_turn(r["session_id"], r["turn_id"])
            r.update({k: t.get(k) for k in ("status", "result", "error", "duration_ms", "cost_usd", "usage", "structured_output")})
        return r

    # -- approvals ------------------------------------------------------------------------------

    def pending_permissions(self, session_id: str) -> List[PermissionRequest]:
        return self._json("GET", f"/v1/sessions/{_seg(session_id)}/permissions")["requests"]

    def permission_requests(self, session_id: str, *, after: Optional[int] = None) -> Iterator[PermissionRequest]:
        """Each tool call waiting for a person, as it is asked (those already waiting first); endless."""
        seen = set()
        for r in self.pending_permissions(session_id):
            seen.add(r["request_id"])
            yield r
        for e in self.session_events(session_id, after=after):
            if e.event != "permission_request" or e.data.get("request_id") in seen:
                continue
            seen.add(e.data["request_id"])
            # The log replays old requests too: only one still waiting is yielded.
            if any(r["request_id"] == e.data["request_id"] for r in self.pending_permissions(session_id)):
                yield e.data

    def decide(
        self,
        session_id: str,
        request_id: str,
        behavior: Literal["allow", "deny"],
        *,
        scope: Optional[Literal["once", "session"]] = None,
        updated_input: Optional[Dict[str, Any]] = None,
        message: Optional[str] = None,
    ) -> PermissionRequest:
        body = _compact(behavior=behavior, scope=scope, updated_input=updated_input, message=message)
        return self._json("POST", f"/v1/sessions/{_seg(session_id)}/permissions/{_seg(request_id)}", body)

    def approve(self, session_id: str, request_id: str, *, scope: Optional[Literal["once", "session"]] = None) -> PermissionRequest:
        return self.decide(session_id, request_id, "allow", scope=scope)

    def deny(self, session_id: str, request_id: str, message: Optional[str] = None) -> PermissionRequest:
        return self.decide(session_id, request_id, "deny", message=message)

    # -- webhooks -------------------------------------------------------------------------------

    def create_webhook(self, url: str, events: List[str], *, description: Optional[str] = None, all_users: Optional[bool] = None) -> Dict[str, Any]:
        """Registers an endpoint; the answer's ``secret`` is shown only now (keep it to verify deliveries)."""
        return self._json("POST", "/v1/webhooks", _compact(url=url, events=events, description=description, all_users=all_users))

    def list_webhooks(self) -> List[Dict[str, Any]]:
        return self._json("GET", "/v1/webhooks")["webhooks"]

    def delete_webhook(self, webhook_id: str) -> Dict[str, Any]:
        return self._json("DELETE", f"/v1/webhooks/{_seg(webhook_id)}")

    def webhook_deliveries(self, webhook_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        return self._json("GET", f"/v1/webhooks/{_seg(webhook_id)}/deliveries", query={"limit": limit, "cursor": cursor})


def verify_webhook(secret: str, headers: Mapping[str, str], body: Union[bytes, str], *, tolerance: float = 300.0) -> Dict[str, Any]:
    """Checks a delivery's Standard Webhooks signature and age; the parsed body, or ValueError."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs(time.time() - int(ts)) > tolerance:
        raise ValueError("webhook-timestamp is too old or in the future")
    raw = body.encode() if isinstance(body, str) else body
    key = base64.b64decode(secret[len("whsec_") :] if secret.startswith("whsec_") else secret)
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()).decode()
    for s in sigs.split(" "):
        version, _, sig = s.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode("utf-8", "replace"), expected.encode()):
            return json.loads(raw)
    raise ValueError("no matching signature")


def _read_events(resp: http.client.HTTPResponse) -> Iterator[Event]:
    """Parses a text/event-stream (comments are heartbeats; an event ends at a blank line)."""
    event, data, ident = "message", [], None
    while True:
        line = resp.readline()
        if not line:
            return
        text = line.decode("utf-8").rstrip("\r\n")
        if text == "":
            if data:
                payload = "\n".join(data)
                try:
                    parsed: Any = json.loads(payload)
                except ValueError:
                    parsed = payload
                yield Event(int(ident) if ident and ident.isascii() and ident.isdigit() else None, event, parsed)
            event, data, ident = "message", [], None
        elif text.startswith(":"):
            continue
        else:
            field, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                ident = value


def _api_error(e: urllib.error.HTTPError) -> ApiError:
    try:
        raw = e.read()
    finally:
        e.close()
    try:
        err = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        err = {"code": "HTTP_ERROR", "message": raw.decode("utf-8", "replace")[:500] or str(e)}
    retry = e.headers.get("retry-after") if e.headers else None
    return ApiError(
        e.code,
        err.get("code", "HTTP_ERROR"),
        err.get("message", ""),
        err.get("request_id") or (e.headers.get("x-request-id") if e.headers else None),
        err.get("details"),
        float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
    )


def _compact(**fields: Any) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _seg(s: str) -> str:
    return urllib.parse.quote(s, safe="")
