#!/usr/bin/env python3
"""A local SMTP sink with a MailHog-compatible inbox API, for running without Docker.

SMTP on --smtp-port (aiosmtpd), offering SMTPUTF8 and 8BITMIME as real servers do. Like a real
server that does not know a mailbox, it refuses recipients whose local part starts with
"bounce-" with 550 5.1.1, so that permanent delivery failures can be tried.
HTTP on --http-port:
  GET /api/v2/messages     messages, newest first, in MailHog's shape (total, count, items[])
  DELETE /api/v1/messages  empty the inbox
  GET /                    a plain list of the messages
"""

import argparse
import html
import json
import threading
import time
import uuid
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_lock = threading.Lock()
_messages: list[dict[str, Any]] = []
_spool: Path | None = None  # with --spool, the inbox survives a restart
UNKNOWN_MAILBOX_PREFIX = "bounce-"


class _Handler:
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address.lower().startswith(UNKNOWN_MAILBOX_PREFIX):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        headers: dict[str, list[str]] = {}
        for key, value in parsed.items():
            headers.setdefault(key, []).append(str(value))
        body = parsed.get_body(preferencelist=("plain", "html"))
        item = {
            "ID": uuid.uuid4().hex,
            "From": {"Mailbox": envelope.mail_from.split("@")[0], "Domain": envelope.mail_from.split("@")[-1]},
            "To": [{"Mailbox": r.split("@")[0], "Domain": r.split("@")[-1]} for r in envelope.rcpt_tos],
            "Content": {"Headers": headers, "Body": body.get_content() if body else "", "Size": len(raw)},
            "Raw": {"From": envelope.mail_from, "To": list(envelope.rcpt_tos), "Data": raw.decode("utf-8", "replace")},
            "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with _lock:
            _messages.insert(0, item)
            if _spool:
                with _spool.open("a") as spool:
                    spool.write(json.dumps(item) + "\n")
        return "250 Message accepted for delivery"


class _Http(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with _lock:
            items = list(_messages)
        if self.path.startswith("/api/v2/messages"):
            self._send(200, json.dumps({"total": len(items), "count": len(items), "start": 0, "items": items}).encode())
        elif self.path == "/":
            rows = "".join(
                f"<li>{html.escape(m['Content']['Headers'].get('Subject', [''])[0])} &rarr; {html.escape(', '.join(m['Raw']['To']))}"
                f"<pre>{html.escape(m['Content']['Body'])}</pre></li>"
                for m in items
            )
            self._send(200, f"<h1>Inbox ({len(items)})</h1><ul>{rows}</ul>".encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b'{"detail":"not found"}')

    def do_DELETE(self) -> None:
        if self.path.startswith("/api/v1/messages"):
            with _lock:
                _messages.clear()
                if _spool:
                    _spool.write_text("")
            self._send(200, b"")
        else:
            self._send(404, b'{"detail":"not found"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--spool", type=Path, help="keep messages in this file (JSON lines) across restarts")
    args = parser.parse_args()
    global _spool
    if args.spool:
        _spool = args.spool
        if _spool.exists():
            _messages[:] = [json.loads(line) for line in reversed(_spool.read_text().splitlines()) if line]
    controller = Controller(_Handler(), hostname=args.host, port=args.smtp_port, enable_SMTPUTF8=True)
    controller.start()
    print(f"mailsink: SMTP on {args.host}:{args.smtp_port}, inbox on http://{args.host}:{args.http_port}/", flush=True)
    try:
        ThreadingHTTPServer((args.host, args.http_port), _Http).serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
