"""``python -m utils.sandbox --port PORT [--host 127.0.0.1]``: serve the sandbox in the foreground.

Logs exactly one line, ``sandbox listening on http://HOST:PORT``, once the socket is
bound (``--port 0`` picks a free port; the line tells which), then serves until
SIGTERM or SIGINT. ``WORKSHOP_SANDBOX_*`` environment variables preset the admin
knobs (see ``utils/sandbox/README.md``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    from utils.sandbox.server import SandboxServer

    server = SandboxServer(args.host, args.port, verbose=args.verbose)

    def _stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() blocks until serve_forever returns, so call it from another thread.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"sandbox listening on {server.url}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
