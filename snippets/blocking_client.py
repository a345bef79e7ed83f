"""A member that checks the server with pings, and says how it was closed."""

import sys

from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

PING_INTERVAL = 0.5  # Seconds between pings.
PING_TIMEOUT = 1  # Seconds to wait for a pong; then the client closes, 1011.


def main(url: str) -> None:
    with connect(url, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT) as ws:
        print("Connected; pinging every half second.")
        try:
            while True:
                ws.recv()  # Whatever the room says; the pings go on meanwhile.
        except ConnectionClosedError as error:
            print(f"Closed: {error}")


if __name__ == "__main__":
    main(sys.argv[1])
