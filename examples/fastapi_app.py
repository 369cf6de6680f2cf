"""The common "FastAPI around the Claude Agent SDK" service, on claude-session-server instead.

The seed pattern kept a dict of SDK clients in memory, guessed where transcripts live, and lost
turns when two requests hit one session. Here the server keeps sessions, transcripts, queues and
approvals; this app only forwards. Run:

    pip install fastapi uvicorn ./clients/python
    CSS_BASE_URL=http://127.0.0.1:8000 CSS_API_KEY=... uvicorn examples.fastapi_app:app --port 9000
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Optional

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from claude_session_client import ApiError, Client, Event, verify_webhook

client = Client(os.environ.get("CSS_BASE_URL", "http://127.0.0.1:8000"), os.environ.get("CSS_API_KEY"))
app = FastAPI(title="Claude sessions (on claude-session-server)")


class CreateBody(BaseModel):
    project: Optional[str] = None
    session_name: Optional[str] = None
    prompt: Optional[str] = None


class QueryBody(BaseModel):
    query: str
    session_id: Optional[str] = None
    # What to do when the session is running a turn: reject (409), queue, or interrupt it.
    if_busy: str = "queue"


def _http(e: ApiError) -> HTTPException:
    """The server's error, passed on with its status, code and request id."""
    return HTTPException(status_code=e.status or 502, detail={"code": e.code, "message": e.message, "request_id": e.request_id})


@app.post("/sessions")
def create_session(body: CreateBody) -> dict:
    try:
        return dict(client.create_session(project=body.project, session_name=body.session_name, prompt=body.prompt))
    except ApiError as e:
        raise _http(e) from e


@app.get("/sessions")
def list_sessions(q: Optional[str] = None, cursor: Optional[str] = None, limit: int = 50) -> dict:
    try:
        return client.list_sessions(q=q, cursor=cursor, limit=limit)
    except ApiError as e:
        raise _http(e) from e


@app.post("/query")
def query(body: QueryBody) -> dict:
    """The seed's endpoint: a turn in the given session (a new one without session_id), waited for."""
    try:
        return client.query(body.query, session_id=body.session_id, if_busy=body.if_busy)
    except ApiError as e:
        raise _http(e) from e


class TurnBody(BaseModel):
    prompt: str
    if_busy: str = "queue"


@app.post("/sessions/{session_id}/turns")
def start_turn(session_id: str, body: TurnBody) -> dict:
    """Starts a turn and answers at once; the browser then follows it with EventSource (below)."""
    try:
        return dict(client.run_turn(session_id, body.prompt, if_busy=body.if_busy, wait=False))  # type: ignore[arg-type]
    except ApiError as e:
        raise _http(e) from e


@app.get("/sessions/{session_id}/turns/{turn_id}/events")
def turn_events(session_id: str, turn_id: str, request: Request) -> Response:
    """The turn's events for an EventSource: it reconnects by itself, with Last-Event-ID, and is resumed from
    there (never a second run of the prompt); once it has the turn's end, 204 tells it to stop."""
    last = request.headers.get("last-event-id")
    after = int(last) if last and last.isdigit() else None
    stream = client.turn_events(session_id, turn_id, after=after)
    try:
        first = next(stream, None)
    except ApiError as e:
        raise _http(e) from e
    if first is None:  # it already has the turn's end
        return Response(status_code=204)

    def line(e: Event) -> str:
        head = f"id: {e.id}\n" if e.id is not None else ""
        return f"{head}event: {e.event}\ndata: {json.dumps(e.data)}\n\n"

    def events() -> Iterator[str]:
        yield line(first)
        try:
            for e in stream:
                yield line(e)
        except ApiError as e:
            yield f"event: error\ndata: {json.dumps({'code': e.code, 'message': e.message})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/sessions/{session_id}/interrupt")
def interrupt(session_id: str) -> dict:
    try:
        return client.interrupt(session_id) or {}
    except ApiError as e:
        raise _http(e) from e


@app.post("/webhooks/claude")
async def on_webhook(request: Request) -> dict:
    """Told by the server when a turn ends (POST /v1/webhooks with this URL and events ["turn.finished"])."""
    try:
        event = verify_webhook(os.environ["CSS_WEBHOOK_SECRET"], dict(request.headers), await request.body())
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    if event["type"] == "turn.finished":
        turn = event["data"]
        print(f"turn {turn['turn_id']} of {turn['session_id']} ended {turn['status']}")
    return {"ok": True}
