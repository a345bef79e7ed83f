"""The rooms of chatroom.py, next to slow synchronous work: blocking or not."""

import asyncio
import contextlib
import logging
import os
import time

import responder
import uvicorn
from chatroom import MAX_FRAME, Server, api

QUERY_SECONDS = float(os.environ.get("CHAT_QUERY_SECONDS", "3"))
log = logging.getLogger("blocking")


def query() -> dict:
    """Stands for a synchronous database driver: it holds its thread meanwhile."""
    log.info("query started")
    time.sleep(QUERY_SECONDS)
    return {"rows": 0}


@api.route("/report/blocking")
async def report_blocking(req: responder.Request, resp: responder.Response) -> None:
    resp.media = query()  # The event loop waits, and every member with it.


@api.route("/report/threaded")
async def report_threaded(req: responder.Request, resp: responder.Response) -> None:
    resp.media = await asyncio.to_thread(query)  # Only this request waits.


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "5042"))
    config = uvicorn.Config(api, host="127.0.0.1", port=port, ws_max_size=MAX_FRAME)
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run()
