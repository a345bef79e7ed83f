"""The observed room: every metric after a known history, and its log lines."""

from __future__ import annotations

import json
import re
import urllib.request
from contextlib import ExitStack

import chatroom
import chatroom_metrics
from prometheus_client.parser import text_string_to_metric_families
from support import ROOT, TIMEOUT, commands, read_frame, send_frame, snippet
from test_chatroom_limits import SPEAKERS, converse, knock, member, speakers
from websockets.sync.client import ClientConnection

SCRAPE = ROOT / "build" / "screenshots" / "metrics.txt"  # Shown on the page.
OTHER_ROOMS = 30  # Rooms without a label of their own.


def scrape(server) -> tuple[str, dict[tuple[str, tuple], float]]:
    """The text of GET /metrics, and each sample by its name and labels."""
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=TIMEOUT) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = r.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def dropped(reason: str, code: int) -> tuple[str, tuple]:
    return ("chat_members_dropped_total", (("code", str(code)), ("reason", reason)))


def no_drops() -> dict[tuple[str, tuple], float]:
    pairs = [*chatroom_metrics.REASONS.items(), (1001, "idle")]
    return {dropped(reason, code): 0.0 for code, reason in pairs}


def outbox(count: int, total: float) -> dict[tuple[str, tuple], float]:
    """The histogram's samples, for count messages that waited total seconds."""
    buckets = [(("le", le),) for le in ("0.001", "0.01", "0.1", "1.0", "10.0", "+Inf")]
    return {
        ("chat_outbox_seconds_count", ()): count,
        ("chat_outbox_seconds_sum", ()): total,
    } | {("chat_outbox_seconds_bucket", b): count for b in buckets}


def test_metrics_after_members_speak_and_two_break_the_rules(serve) -> None:
    server = serve(commands("chatroom_metrics.console")[0])
    with ExitStack() as stack:

        def join(room: str, n: int) -> ClientConnection:
            return stack.enter_context(member(server, f"/chat/{room}", f"127.0.5.{n}"))

        ann, ben = join("main", 1), join("main", 2)
        others = [join(f"room-{n}", 10 + n) for n in range(OTHER_ROOMS)]
        _, first = scrape(server)
        assert first == {
            ("chat_members", (("room", "main"),)): 2.0,
            ("chat_members", (("room", "other"),)): float(OTHER_ROOMS),
            ("chat_messages_delivered_total", ()): 0.0,
            **no_drops(),
            **outbox(0, 0.0),
        }
        ann.send(json.dumps({"text": "hi"}))
        assert json.loads(ann.recv(timeout=TIMEOUT))["text"] == "hi"
        assert json.loads(ben.recv(timeout=TIMEOUT))["text"] == "hi"
        ben.send(json.dumps({"type": "ping"}))
        assert json.loads(ben.recv(timeout=TIMEOUT)) == {"type": "pong"}
        for opcode, payload, code in [
            (0x2, b"\x00\x01", 1003),  # Bytes on a text protocol.
            (0x1, b"x" * (chatroom.MAX_MESSAGE + 1), 1009),  # One too many.
        ]:
            sock, status = knock(server, "/chat/main", "127.0.6.1")
            with sock:
                assert status == "HTTP/1.1 101 Switching Protocols"
                send_frame(sock, opcode, payload)
                assert read_frame(sock)[1][:2] == code.to_bytes(2, "big")
            server.wait_for(rf"event=close room=main code={code} reason=\w+ ")
        text, last = scrape(server)
        total = last[("chat_outbox_seconds_sum", ())]
        assert 0 < total < 3 * TIMEOUT
        timed = {k: v for k, v in last.items() if k[0] == "chat_outbox_seconds_bucket"}
        counts = list(timed.values())  # In the order of le, up to +Inf.
        assert counts == sorted(counts) and counts[0] >= 0 and counts[-1] == 3
        assert last == {
            ("chat_members", (("room", "main"),)): 2.0,
            ("chat_members", (("room", "other"),)): float(OTHER_ROOMS),
            ("chat_messages_delivered_total", ()): 3.0,  # "hi" twice, one pong.
            **no_drops(),
            dropped("bytes", 1003): 1.0,
            dropped("too_big", 1009): 1.0,
            **outbox(3, total),
            **timed,  # How many waited under each bound: timing decides.
        }
        for other in others:
            other.close()
    server.wait_for(r"event=close room=main code=- reason=left ")
    SCRAPE.parent.mkdir(parents=True, exist_ok=True)
    SCRAPE.write_text(text, encoding="utf-8")


def test_what_uvicorn_logs_and_what_the_room_adds(serve) -> None:
    server = serve(commands("chatroom_metrics.console")[0])
    sock, _ = knock(server, "/chat/main")
    with sock:
        send_frame(sock, 0x2, b"\x00")
        assert read_frame(sock)[1][:2] == (1003).to_bytes(2, "big")
    server.wait_for(r"event=close room=main code=1003 reason=bytes seconds=")
    sock, status = knock(server, "/chat/Main")  # Not a room name: refused.
    sock.close()
    assert status == "HTTP/1.1 403 Forbidden"
    server.wait_for(r'"WebSocket /chat/Main" 403$')
    sock, _ = knock(server, "/chat/main")
    sock.close()  # Gone without a close frame.
    server.wait_for(r"event=close room=main code=- reason=left seconds=")
    assert server.stop() == 0
    lines = server.output.splitlines()
    uvicorns = [line for line in lines if line.startswith("INFO:     ")]
    accepted = [line for line in uvicorns if "WebSocket /chat/main" in line]
    assert len(accepted) == 2
    assert all(line.endswith('"WebSocket /chat/main" [accepted]') for line in accepted)
    assert uvicorns.count("INFO:     connection open") == 2  # No address, no path.
    assert not any("clos" in line for line in uvicorns)  # Nothing when they end.
    ours = [line for line in lines if line.startswith("INFO:chatroom.metrics:")]
    shown = snippet("chatroom_metrics_log.txt").splitlines()  # "…": any duration.
    assert [re.sub(r"seconds=\d+\.\d{3}$", "seconds=…", line) for line in ours] == shown


def test_an_idle_member_is_counted_as_idle(serve) -> None:
    server = serve(commands("chatroom_metrics.console")[0], CHAT_IDLE_SECONDS="1")
    sock, status = knock(server, "/chat/main")
    assert status == "HTTP/1.1 101 Switching Protocols"
    with sock:  # It says nothing: after a second, Responder closes it.
        assert read_frame(sock)[1][:2] == (1001).to_bytes(2, "big")
    line = server.wait_for(r"event=close room=main code=1001 reason=idle ")
    assert re.search(
        r"INFO:chatroom\.metrics:event=close room=main code=1001 "
        r"reason=idle seconds=\d+\.\d{3}$",
        line.rstrip("\n"),
    )
    _, samples = scrape(server)
    assert samples[dropped("idle", 1001)] == 1.0
    assert not any(name == "chat_members" for name, _ in samples)  # Nobody is left.


def test_the_room_label_takes_only_the_labelled_rooms() -> None:
    assert {"main"} == chatroom_metrics.LABELLED
    assert {chatroom_metrics.label(r) for r in ("main", "games", "x" * 32)} == {
        "main",
        "other",
    }


def test_a_member_that_never_reads_is_counted_as_slow(serve) -> None:
    server = serve(commands("chatroom_metrics.console")[0])
    stalled, _ = knock(server, "/chat/main", "127.0.4.1", receive_buffer=4096)
    with stalled, speakers(server, "main") as people:
        converse(people)  # Far more than its outbox holds: it is closed.
        server.wait_for(r"event=close room=main code=1008 reason=slow ")
        _, samples = scrape(server)
    assert samples[dropped("slow", 1008)] == 1.0
    assert samples[("chat_members", (("room", "main"),))] == SPEAKERS
