"""Draw the "How fast is it?" figures from the committed benchmark results.

``make bench`` writes docs/bench/fanout.json; these directives turn it into
tables and an SVG plot each time the site is built, so no figure on the page is
typed by hand:

``.. bench-machine::``   what produced the figures (cores, CPU, versions);
``.. bench-summary::``   the headline: CPU per delivery at the largest N;
``.. bench-gap::``       basic room vs the reference, resilient vs basic;
``.. bench-noise::``     the same room measured twice: what one run differs by;
``.. bench-stall::``     how the never-reading member was measured;
``.. bench-table:: fanout`` or ``stalled`` or ``candidates``;
``.. bench-plot::``      CPU per delivery and latency against N, a line per room.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

BASE = "reference uvloop"  # The raw room every other is compared with.


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def merge(results: dict) -> dict:
    """One run per room and N. Where make bench measured a room more than once
    (at the largest N, in rounds), its middle run by CPU stands for it, with
    every round's CPU figure kept in "rounds" and "ok" only if all were."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for run in results["fanout"]:
        groups.setdefault((run["room"], run["members"]), []).append(run)
    fanout = []
    for runs in groups.values():
        ordered = sorted(runs, key=lambda run: run["server_cpu_ms_per_1000"])
        middle = dict(ordered[len(ordered) // 2])
        if len(runs) > 1:
            middle["rounds"] = [run["server_cpu_ms_per_1000"] for run in ordered]
            middle["ok"] = all(run["ok"] for run in runs)
        fanout.append(middle)
    return {**results, "fanout": fanout}


def cpu(run: dict) -> str:
    """Its CPU per 1,000 deliveries, and the range over its rounds if several."""
    text = f"{run['server_cpu_ms_per_1000']:.1f}"
    if "rounds" in run:
        text += f" ({run['rounds'][0]:.1f} to {run['rounds'][-1]:.1f})"
    return text


def at_top(results: dict) -> tuple[int, dict[str, dict]]:
    """The largest N measured, and each room's run at it."""
    n = max(run["members"] for run in results["fanout"])
    return n, {run["room"]: run for run in results["fanout"] if run["members"] == n}


def cost(results: dict, room: str, members: int) -> float | None:
    """Server CPU ms per 1,000 deliveries of room at N = members, if measured."""
    for run in results["fanout"]:
        if run["room"] == room and run["members"] == members:
            return run["server_cpu_ms_per_1000"]
    return None


def ratio(results: dict, run: dict, room: str = BASE) -> str:
    """run's CPU per delivery as a multiple of room's, at the same N."""
    base = cost(results, room, run["members"])
    return f"{run['server_cpu_ms_per_1000'] / base:.2f}x" if base else "-"


def delivered(run: dict) -> str:
    if run["ok"]:
        return f"all {run['expected']:,}"
    return f"{run['delivered']:,} of {run['expected']:,} (failed)"


def fanout_rows(results: dict) -> list[list[str]]:
    header = [
        "room",
        "N",
        "messages/s",
        "server CPU ms per 1,000 deliveries (range over rounds)",
        f"vs {BASE}",
        "latency p50 / p99 / max (ms)",
        "peak RSS (MB)",
        "client CPU (s) in processes",
        "delivered",
    ]
    rows = [header]
    for run in results["fanout"]:
        if run["room"] in results["candidates"]:
            continue
        processes = run["client_processes"]
        rows.append(
            [
                run["room"],
                f"{run['members']:,}",
                f"{run['rate']:g}",
                cpu(run),
                ratio(results, run),
                latencies(run),
                f"{run['server_peak_rss_mb']:.0f}",
                f"{run['client_cpu_s']:.1f} in {processes}",
                delivered(run),
            ]
        )
    return rows


def candidate_rows(results: dict) -> list[list[str]]:
    rows = [
        [
            "room",
            "N",
            "server CPU ms per 1,000 deliveries",
            "vs chatroom",
            f"vs {BASE}",
            "latency p50 / p99 / max (ms)",
            "delivered",
        ]
    ]
    for run in results["fanout"]:
        if run["room"] in results["candidates"]:
            rows.append(
                [
                    run["room"],
                    f"{run['members']:,}",
                    f"{run['server_cpu_ms_per_1000']:.1f}",
                    ratio(results, run, "chatroom"),
                    ratio(results, run),
                    latencies(run),
                    delivered(run),
                ]
            )
    return rows


def latencies(run: dict) -> str:
    latency = run["latency_ms"]
    return f"{latency['p50']:.1f} / {latency['p99']:.1f} / {latency['max']:.1f}"


def stalled_fate(run: dict) -> str:
    """What became of the member that never reads, as the table says it."""
    sent, got = run["messages"], run["stalled_member"]
    if got["received"] == sent:
        return f"all {sent} messages kept for it"
    cut = f"cut off after {got['received']} of {sent} messages"
    if got["close_code"]:
        return f"{cut}, with {got['close_code']}"
    return f"{cut}; no close frame got through"


def stalled_rows(results: dict) -> list[list[str]]:
    rows = [
        [
            "room",
            "others' latency p50 / p99 / max (ms)",
            "server peak RSS (MB)",
            "the member that never reads",
            "delivered to the others",
        ]
    ]
    for run in results["stalled"]:
        fate = stalled_fate(run)
        rows.append(
            [
                run["room"],
                latencies(run),
                f"{run['server_peak_rss_mb']:.0f}",
                fate,
                delivered(run),
            ]
        )
    return rows


def machine_text(results: dict) -> str:
    machine = results["machine"]
    settings = results["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    first = min(run["members"] for run in results["fanout"])
    deliveries = first * settings["messages"]
    return (
        f"Measured by make bench on {machine['cores']} cores ({machine['cpu']}), "
        f"Python {machine['python']}, {versions}. "
        f"Each run sends {settings['messages']} messages of {settings['size']} "
        f"bytes, at {settings['rate']:g} a second or slower, so that the machine "
        f"delivers at most {settings['deliveries_per_second']:,.0f} messages a second; "
        f"each client process holds at most "
        f"{settings['members_per_client_process']} members. "
        f"/proc counts CPU time in ticks of 1/{machine['clock_ticks']} s: "
        f"at N = {first}, where a run makes {deliveries:,} deliveries, one tick "
        f"is {1e6 / machine['clock_ticks'] / deliveries:.1f} ms per 1,000 of them."
        + rounds_text(results)
    )


def rounds_text(results: dict) -> str:
    rounds = results["settings"].get("rounds", 1)  # Results from before: one.
    if rounds < 2:
        return ""
    n = max(run["members"] for run in results["fanout"])
    return (
        f" At N = {n:,} each room was measured {rounds} times, in turn, and the "
        f"tables give its middle measurement with the range of all {rounds}."
    )


def summary_text(results: dict) -> str:
    """The headline: the rooms' CPU per delivery against the reference's, at top N."""
    n = max(run["members"] for run in results["fanout"])
    base = cost(results, BASE, n)
    parts = [
        f"{room} {cost(results, room, n):.1f} ms ({cost(results, room, n) / base:.2f}x)"
        for room in ("chatroom", "chatroom_eager", "chat")
        if base and cost(results, room, n)
    ]
    return (
        f"At N = {n:,}, {BASE} used {base:.1f} ms of server CPU per 1,000 "
        f"deliveries; " + ", ".join(parts) + "."
    )


def gap_text(results: dict) -> str:
    """The two steps from the reference to the resilient room, at the top N."""
    n, runs = at_top(results)
    rooms = (BASE, "chat", "chatroom", "chatroom_eager")
    costs = [runs.get(r, {}).get("server_cpu_ms_per_1000") for r in rooms]
    if not all(costs):
        return f"This run did not measure all of {', '.join(rooms)} at N = {n:,}."
    base, chat, room, eager = costs
    text = (
        f"At N = {n:,}, the basic room used {chat / base:.2f}x the CPU per "
        f"delivery of {BASE}; the resilient room used {room / chat:.2f}x the "
        f"basic room's, and the room that sends at once {eager / chat:.2f}x."
    )
    kernel = [runs[r].get("server_kernel_ms_per_1000") for r in rooms]
    if None not in kernel:  # Measured by a bench_fanout.py that splits it.
        # CPU ms per 1,000 deliveries outside the kernel, by room.
        own = {r: c - k for r, c, k in zip(rooms, costs, kernel, strict=True)}
        text += (
            f" Of each room's CPU time per 1,000 deliveries, {min(kernel):.1f} to "
            f"{max(kernel):.1f} ms were spent in the kernel on the server's "
            f"behalf, and the rest in the server's own code. In their own code "
            f"alone, the resilient room used {own['chatroom'] / own['chat']:.2f}x "
            f"the basic room's CPU, and the room that sends at once "
            f"{own['chatroom_eager'] / own['chat']:.2f}x."
        )
    return text


def noise_text(results: dict) -> str:
    """How far apart the rounds of chatroom came out at the top N, and which
    candidates cost less than every one of them."""
    n, runs = at_top(results)
    rounds = runs.get("chatroom", {}).get("rounds")
    if not rounds:
        return f"This run did not measure chatroom more than once at N = {n:,}."
    if not rounds[0]:  # A tiny run: no whole tick of CPU time.
        return f"At N = {n:,}, chatroom used too little CPU to tell the noise."
    cheaper = [
        room
        for room, run in runs.items()
        if room in results["candidates"] and run["server_cpu_ms_per_1000"] < rounds[0]
    ]
    verdict = (
        f"Cheaper than every one of them: {', '.join(cheaper)}."
        if cheaper
        else "No candidate cost less than every one of them."
    )
    return (
        f"At N = {n:,}, chatroom was measured {len(rounds)} times, unchanged, in "
        f"turn with the other rooms and before and after the candidates: "
        f"{rounds[0]:.1f} to {rounds[-1]:.1f} ms per 1,000 deliveries, "
        f"{(rounds[-1] - rounds[0]) / rounds[0]:.0%} apart, so the noise in "
        f"this run is at least that. {verdict}"
    )


def stall_text(results: dict) -> str:
    stall = results["settings"]["stall"]
    total = stall["messages"] * stall["size"] / 2**20
    return (
        f"{stall['members']} members and one that never reads; the speaker sends "
        f"{stall['messages']} messages of {stall['size'] // 1024} KiB "
        f"({total:.1f} MiB) at {stall['rate']:g} a second."
    )


def plot_svg(results: dict) -> str:
    """Two panels against N, one above the other so that a phone can read them:
    server CPU per 1,000 deliveries, and p50 latency; a line per room (the
    candidates, measured at one N only, are in their table)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    pyplot.rcParams["svg.fonttype"] = "none"  # Text stays text: small and sharp.
    pyplot.rcParams["svg.hashsalt"] = "fanout"  # Same input, same SVG.
    pyplot.rcParams["font.size"] = 11
    figure, (cpu, latency) = pyplot.subplots(2, 1, figsize=(5.5, 7.5), sharex=True)
    rooms = dict.fromkeys(
        r["room"] for r in results["fanout"] if r["room"] not in results["candidates"]
    )
    for room, marker in zip(rooms, "osD^v<>", strict=False):
        runs = [r for r in results["fanout"] if r["room"] == room]
        sizes = [r["members"] for r in runs]
        style = f"{marker}-"
        cpu.plot(sizes, [r["server_cpu_ms_per_1000"] for r in runs], style, label=room)
        latency.plot(sizes, [r["latency_ms"]["p50"] for r in runs], style)
    for axes, title in (
        (cpu, "server CPU ms per 1,000 deliveries"),
        (latency, "fan-out latency p50 (ms)"),
    ):
        axes.set_xscale("log")
        axes.set_title(title)
        axes.grid(alpha=0.3)
    latency.set_xlabel("members (N)")
    latency.set_yscale("log")
    figure.legend(loc="lower center", ncol=2, frameon=False)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    pyplot.close(figure)
    # As wide as the page's column, whatever the screen: scale by its viewBox.
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
        r'<svg\1 width="100%"',
        out.getvalue(),
        count=1,
    )


def list_table(rows: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", "   :class: bench-table", ""]
    for row in rows:
        lines.append("   * - " + row[0])
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines)


class BenchDirective(SphinxDirective):
    def results(self) -> dict:
        path = Path(self.config.bench_results)
        self.env.note_dependency(str(path))  # A new results file rebuilds the page.
        return merge(load(path))


def paragraph(make: Callable[[dict], str]) -> type[BenchDirective]:
    """A directive that writes one paragraph, made from the results by make."""

    class Paragraph(BenchDirective):
        def run(self) -> list[nodes.Node]:
            text = make(self.results())
            return [nodes.paragraph(text, text)]

    return Paragraph


class BenchTable(BenchDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        results = self.results()
        rows = {
            "fanout": lambda: fanout_rows(results),
            "candidates": lambda: candidate_rows(results),
            "stalled": lambda: stalled_rows(results),
        }[self.arguments[0]]()
        return self.parse_text_to_nodes(list_table(rows))


class BenchPlot(BenchDirective):
    def run(self) -> list[nodes.Node]:
        svg = plot_svg(self.results())
        return [nodes.raw("", f'<div class="bench-plot">{svg}</div>', format="html")]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value(
        "bench_results", str(Path(__file__).with_name("fanout.json")), "env"
    )
    app.add_directive("bench-machine", paragraph(machine_text))
    app.add_directive("bench-summary", paragraph(summary_text))
    app.add_directive("bench-gap", paragraph(gap_text))
    app.add_directive("bench-noise", paragraph(noise_text))
    app.add_directive("bench-stall", paragraph(stall_text))
    app.add_directive("bench-table", BenchTable)
    app.add_directive("bench-plot", BenchPlot)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
