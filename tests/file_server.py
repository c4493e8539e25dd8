"""A real HTTP server on 127.0.0.1 serving files from a folder, counting GET requests per path.

Shared by the tests of the fetch (``test_fetch.py``) and of the public data sets (``test_datasets.py``).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Mapping
from pathlib import Path


class FileServer:
    """Serves ``root`` on 127.0.0.1 and counts GET requests per path (``requests``).

    ``short`` maps a path (``"/name"``) to content whose full length the reply promises while it
    sends only the first half and hangs up (a download cut short).
    """

    def __init__(self, root: Path, short: Mapping[str, bytes] | None = None) -> None:
        requests: dict[str, int] = {}
        self.requests = requests
        self.root = root
        cut = dict(short or {})

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                requests[self.path] = requests.get(self.path, 0) + 1
                if self.path in cut:  # promises the whole file, sends half, hangs up
                    content = cut[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content[: len(content) // 2])
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
