"""The Python client against a real server (CSS_BASE_URL; API keys CSS_KEY_ALICE and CSS_KEY_BOB;
the server runs with USER_MAX_CONCURRENT_TURNS=2). Run by `npm test`, which starts the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import unittest
import uuid
from typing import List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from claude_session_client import ApiError, Client, Event, verify_webhook  # noqa: E402

BASE = os.environ.get("CSS_BASE_URL", "http://127.0.0.1:8000")
ALICE = os.environ.get("CSS_KEY_ALICE")
BOB = os.environ.get("CSS_KEY_BOB")


class CuttingProxy:
    """A TCP proxy to the server that drops the first streamed turn's connection after `cut_after` bytes."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        host, port = upstream.replace("http://", "").split(":")
        self.upstream = (host, int(port.rstrip("/")))
        self.cut_after = cut_after
        self.cuts = 0
        self.connections: List[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        up = socket.create_connection(self.upstream)
        first = client.recv(65536)
        self.connections.append(first.split(b"\r\n", 1)[0])
        cut = b"/turns/stream" in first.split(b"\r\n", 1)[0] and self.cuts == 0
        if cut:
            self.cuts += 1
        up.sendall(first)
        threading.Thread(target=self._pump, args=(client, up, None), daemon=True).start()
        self._pump(up, client, self.cut_after if cut else None)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, limit: Optional[int]) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


class ClientTest(unittest.TestCase):
    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Client(BASE, ALICE, stream_timeout=30)

    def test_blue(self) -> None:
        s = self.client.create_session(prompt="Remember: my favorite color is blue")
        self.assertEqual(s["turn"]["status"], "succeeded")
        t = self.client.run_turn(s["session_id"], "What is my favorite color?")
        self.assertEqual(t["status"], "succeeded")
        self.assertIn("blue", t["result"] or "")
        self.assertEqual(self.client.get_session(s["session_id"])["turn_count"], 2)
        self.assertIn(s["session_id"], [x["session_id"] for x in self.client.iter_sessions(limit=1)])
        q = self.client.query("What is my favorite color?", session_id=s["session_id"])
        self.assertIn("blue", q["result"] or "")

    def test_stream_resumes_after_a_dropped_connection(self) -> None:
        proxy = CuttingProxy(BASE, cut_after=6000)
        try:
            via = Client(proxy.url, ALICE, stream_timeout=30)
            s = via.create_session()
            events: List[Event] = list(via.stream_turn(s["session_id"], "[[words:400]] a long answer"))
            self.assertEqual(proxy.cuts, 1)
            self.assertTrue(any(b"GET" in c and b"/events" in c for c in proxy.connections), proxy.connections)
            self.assertEqual(events[0].event, "turn")
            self.assertEqual(events[-1].event, "done")
            self.assertEqual(events[-1].data["status"], "succeeded")
            ids = [e.id for e in events if e.id is not None]
            self.assertEqual(ids, sorted(set(ids)), "no event lost order or repeated")
            # The same events as a clean replay of the turn, none lost.
            turn_id = events[0].data["turn_id"]
            replay = [e.id for e in self.client.turn_events(s["session_id"], turn_id) if e.id is not None]
            self.assertEqual(ids, replay)
        finally:
            proxy.close()

    def test_approval(self) -> None:
        s = self.client.create_session()
        turn = self.client.run_turn(s["session_id"], "[[bash:echo approved-by-python]]", wait=False)
        for req in self.client.permission_requests(s["session_id"]):
            self.assertEqual(req["tool_name"], "Bash")
            self.assertEqual(req["turn_id"], turn["turn_id"])
            self.client.approve(s["session_id"], req["request_id"])
            break
        done = self.client.wait_for_turn(s["session_id"], turn["turn_id"], timeout=60)
        self.assertEqual(done["status"], "succeeded")
        self.assertIn("approved-by-python", done["result"] or "")
        with self.assertRaises(ApiError) as e:
            self.client.approve(s["session_id"], req["request_id"])
        self.assertEqual((e.exception.status, e.exception.code), (409, "PERMISSION_ALREADY_DECIDED"))

    def test_interrupt(self) -> None:
        s = self.client.create_session()
        turn = self.client.run_turn(s["session_id"], "[[slow:20000]] a long job", wait=False)
        deadline = time.monotonic() + 20
        while self.client.get_turn(s["session_id"], turn["turn_id"])["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.client.interrupt(s["session_id"])
        done = self.client.wait_for_turn(s["session_id"], turn["turn_id"], timeout=30)
        self.assertEqual(done["status"], "interrupted")
        with self.assertRaises(ApiError) as e:
            self.client.interrupt(s["session_id"])
        self.assertEqual((e.exception.status, e.exception.code), (409, "NO_RUNNING_TURN"))

    def test_errors(self) -> None:
        with self.assertRaises(ApiError) as e:
            self.client.get_session(str(uuid.uuid4()))
        self.assertEqual((e.exception.status, e.exception.code), (404, "SESSION_NOT_FOUND"))
        self.assertTrue(e.exception.request_id)
        # Another user's session is not found either.
        mine = self.client.create_session()
        with self.assertRaises(ApiError) as e:
            Client(BASE, BOB).get_session(mine["session_id"])
        self.assertEqual(e.exception.code, "SESSION_NOT_FOUND")
        with self.assertRaises(ApiError) as e:
            Client(BASE, "not-a-key").list_sessions()
        self.assertEqual((e.exception.status, e.exception.code), (401, "UNAUTHORIZED"))
        with self.assertRaises(ApiError) as e:
            self.client.run_turn(mine["session_id"], "")
        self.assertEqual((e.exception.status, e.exception.code), (400, "INVALID_REQUEST"))
        # Busy: 409; past the user's concurrent turns (2 here): 429 with Retry-After.
        a = self.client.run_turn(mine["session_id"], "[[slow:20000]] one", wait=False)
        with self.assertRaises(ApiError) as e:
            self.client.run_turn(mine["session_id"], "again")
        self.assertEqual((e.exception.status, e.exception.code), (409, "SESSION_BUSY"))
        other = self.client.create_session()
        b = self.client.run_turn(other["session_id"], "[[slow:20000]] two", wait=False)
        try:
            third = self.client.create_session()
            with self.assertRaises(ApiError) as e:
                self.client.run_turn(third["session_id"], "three")
            self.assertEqual((e.exception.status, e.exception.code), (429, "CAPACITY_EXCEEDED"))
            self.assertGreater(e.exception.retry_after or 0, 0)
        finally:
            for sid, t in ((mine["session_id"], a), (other["session_id"], b)):
                try:
                    self.client.interrupt(sid)
                except ApiError:
                    pass
                self.client.wait_for_turn(sid, t["turn_id"], timeout=30)

    def test_verify_webhook(self) -> None:
        secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
        body = json.dumps({"type": "turn.finished", "data": {"turn_id": "t"}})
        ts = str(int(time.time()))
        sig = base64.b64encode(hmac.new(base64.b64decode(secret[6:]), f"msg_1.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
        headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": ts, "Webhook-Signature": f"v1,{sig}"}
        self.assertEqual(verify_webhook(secret, headers, body)["type"], "turn.finished")
        with self.assertRaises(ValueError):
            verify_webhook(secret, headers, body.replace("turn", "tvrn"))
        with self.assertRaises(ValueError):
            verify_webhook("whsec_" + base64.b64encode(b"another key entirely, not ours").decode(), headers, body)
        with self.assertRaises(ValueError):
            verify_webhook(secret, {**headers, "Webhook-Timestamp": str(int(time.time()) - 3600)}, body)


if __name__ == "__main__":
    unittest.main()
