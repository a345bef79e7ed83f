"""Say each word from the command line to the lifecycle server; show replies."""

import os
import sys

from websocket import ABNF, create_connection

URL = f"ws://localhost:{os.environ.get('PORT', '5042')}/lifecycle"


def main(url: str, words: list[str]) -> None:
    ws = create_connection(url, timeout=10)
    try:
        for word in words:
            print(f"> {word}")
            ws.send(word)
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == ABNF.OPCODE_CLOSE:  # Two bytes of code, then the reason.
                code, reason = int.from_bytes(data[:2], "big"), data[2:].decode()
                print(f"closed by the server: {code} {reason}".rstrip())
                return
            print(f"< {data.decode()}")
    finally:
        ws.close()  # Our close frame (1000), unless we answered the server's.
        ws.shutdown()  # Close the socket: in that case close() leaves it open.


if __name__ == "__main__":
    main(URL, sys.argv[1:])
