"""A small OpenAI-compatible server for tests: real HTTP on a free loopback port.

It speaks ``POST /v1/chat/completions`` with and without SSE streaming, records
every request body and header it receives, and can be told to misbehave:

- ``mode = "ok"``: reply with the next scripted text (``replies``), or ``reply(body)``;
- ``"slow"``: wait ``delay`` seconds first;
- ``"error"``: HTTP 500 with a JSON error;
- ``"malformed"``: HTTP 200 whose body (or SSE event) is not JSON;
- ``"drop"``: start a stream, send one piece, then close the connection.

Only the language model is a stand-in (none runs here); the protocol, the
client library and the network path are the real ones.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.mode = "ok"
        self.delay = 0.0
        self.replies: list[str] = []
        self.reply = None  # callable(body) -> str, used when no scripted reply is left
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FakeLLM":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                body = json.loads(raw)
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                if fake.mode == "error":
                    return self._send(500, {"error": {"message": "internal error", "type": "server_error"}})
                if fake.mode == "drop" and not body.get("stream"):  # hang up without an answer
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                text = fake.replies.pop(0) if fake.replies else (fake.reply(body) if fake.reply else "好的 [1]")
                if body.get("stream"):
                    try:
                        return self._stream(text, body)
                    except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                        return
                if fake.mode == "malformed":
                    return self._raw(200, b"{not json", "application/json")
                self._send(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                                 "model": body.get("model", "test"),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _stream(self, text, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = [text[i:i + 4] for i in range(0, len(text), 4)] or [""]
                for n, piece in enumerate(pieces):
                    if fake.mode == "malformed":
                        self.wfile.write(b"data: {broken\n\n")
                        break
                    chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": body.get("model", "test"),
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                    self.wfile.flush()
                    if fake.mode == "drop" and n == 0:
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        self.close_connection = True
                        return
                else:
                    end = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                           "model": body.get("model", "test"),
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.close_connection = True

            def _send(self, status, payload):
                self._raw(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

            def _raw(self, status, data, kind):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def last_user(self) -> str:
        return self.requests[-1]["messages"][-1]["content"]
