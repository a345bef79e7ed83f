"""Send the request of handshake_request.http; print the key lines of the answer."""

import os
import socket
from pathlib import Path

PORT = int(os.environ.get("PORT", "5042"))
REQUEST = (Path(__file__).parent / "handshake_request.http").read_text()


def main() -> None:
    # HTTP ends each line with CRLF, and the headers with an empty line.
    request = REQUEST.replace("\n", "\r\n") + "\r\n"
    with socket.create_connection(("localhost", PORT), timeout=10) as sock:
        sock.sendall(request.encode())
        with sock.makefile("rb") as answer:
            print(answer.readline().decode().rstrip())  # The status line.
            while line := answer.readline().decode().rstrip():  # Up to the blank.
                if line.lower().startswith("sec-websocket-accept:"):
                    print(line)


if __name__ == "__main__":
    main()
