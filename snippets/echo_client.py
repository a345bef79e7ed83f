"""Send "hello" to the echo server and print its reply."""

import os
import sys

from websocket import create_connection

DEFAULT_URL = f"ws://localhost:{os.environ.get('PORT', '5042')}/ws"


def main(url: str) -> None:
    ws = create_connection(url, timeout=10)
    try:
        ws.send("hello")
        print(ws.recv())
    finally:
        ws.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL)
