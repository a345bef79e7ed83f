"""A client without cookies: a ticket by POST, then the room with it, once."""

import json
import sys
import urllib.request

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def get_ticket(server: str, name: str) -> str:
    body = json.dumps({"name": name}).encode()
    with urllib.request.urlopen(f"{server}/ticket", data=body) as response:
        return json.loads(response.read())["ticket"]


def main(server: str, name: str, text: str) -> None:
    ticket = get_ticket(server, name)
    url = server.replace("http", "ws", 1) + f"/chat/main?ticket={ticket}"
    with connect(url) as ws:
        ws.send(json.dumps({"text": text}))
        print("<", ws.recv())
    try:
        with connect(url):  # The same ticket, a second time.
            pass  # Never reached: the server refuses it.
    except InvalidStatus as error:
        print("The same ticket again:", error)


if __name__ == "__main__":
    main(*sys.argv[1:4])
