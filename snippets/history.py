"""The rooms of chatroom.py, their messages kept in SQLite, through a pool."""

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import responder
import uvicorn
from chatroom import (
    MAX_FRAME,
    Member,
    Server,
    address,
    connections,
    counted,
    refused,
    take_part,
)
from starlette.websockets import WebSocket

DATABASE = os.environ.get("CHAT_DATABASE", "chat.sqlite3")
POOL_SIZE = int(os.environ.get("CHAT_POOL_SIZE", "3"))  # Connections, at most.
HISTORY = 20  # The last messages of its room a newcomer is sent.
log = logging.getLogger("history")
api = responder.API(static_dir=Path(__file__).parent / "room", ws_idle_timeout=300)


class Pool:
    """A fixed set of connections: a task waits until one is free."""

    def __init__(self) -> None:
        self.free: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self.opened: list[aiosqlite.Connection] = []

    async def open(self, path: str, size: int) -> None:
        for _ in range(size):
            self.opened.append(await aiosqlite.connect(path))
            self.free.put_nowait(self.opened[-1])

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        if self.free.empty():
            log.info("waiting for a database connection: all %d in use", POOL_SIZE)
        db = await self.free.get()
        try:
            yield db
        finally:
            self.free.put_nowait(db)

    async def close(self) -> None:
        for db in self.opened:
            await db.close()


pool = Pool()
to_keep: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # Room, text.


class KeptMember(Member):
    """A member whose every message is also queued to be kept."""

    def __init__(self, ws: WebSocket, room: str) -> None:
        super().__init__(ws)
        self.room = room

    def message(self, text: str) -> dict:
        to_keep.put_nowait((self.room, text))  # The room does not wait for it.
        return super().message(text)


async def keep_forever() -> None:
    """Store queued messages in order, with a connection for each one."""
    while True:
        room, text = await to_keep.get()
        async with pool.connection() as db:  # Checked out for one insert.
            cursor = await db.execute(
                "INSERT INTO messages (room, text) VALUES (?, ?)", (room, text)
            )
            await db.commit()
        log.info("kept message %d, of %r", cursor.lastrowid, room)


async def recent(db: aiosqlite.Connection, room: str) -> list[str]:
    rows = await db.execute_fetchall(
        "SELECT text FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?",
        (room, HISTORY),
    )
    return [text for (text,) in reversed(list(rows))]


@api.on_event("startup")
async def start_keeping() -> None:
    await pool.open(DATABASE, POOL_SIZE)
    async with pool.connection() as db:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS messages"
            " (id INTEGER PRIMARY KEY, room TEXT NOT NULL, text TEXT NOT NULL)"
        )
        await db.commit()
    api.state.keeper = asyncio.create_task(keep_forever())


@api.on_event("shutdown")
async def stop_keeping() -> None:
    api.state.keeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await api.state.keeper
    await pool.close()


async def join(ws: WebSocket, room: str, history: list[str]) -> None:
    member = KeptMember(ws, room)
    for text in history:  # Sent first, from its outbox, like any message.
        member.deliver(
            json.dumps({"type": "message", "text": text}, ensure_ascii=False)
        )
    with counted(connections, address(ws)):
        await ws.accept()
        await take_part(room, member)


@api.route("/chat/{room}", websocket=True)
async def per_message(ws: WebSocket, room: str) -> None:
    """A connection for reading the history, then back to the pool."""
    if refused(ws, room):
        await ws.close(1008)
        return
    async with pool.connection() as db:
        history = await recent(db, room)
    await join(ws, room, history)


@api.route("/held/{room}", websocket=True)
async def per_socket(ws: WebSocket, room: str) -> None:
    """The mistake: a connection checked out for the socket's whole life."""
    if refused(ws, room):
        await ws.close(1008)
        return
    async with pool.connection() as db:
        await join(ws, room, await recent(db, room))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    port = int(os.environ.get("PORT", "5042"))
    config = uvicorn.Config(api, host="127.0.0.1", port=port, ws_max_size=MAX_FRAME)
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run()
