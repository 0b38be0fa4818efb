"""The SSE hub's shutdown (liaowang/events.py): every stream is told to end, and so is any that opens after."""

from __future__ import annotations

import asyncio

from liaowang.events import EventHub


def test_close_all_ends_every_stream_even_one_whose_backlog_is_full():
    async def scenario() -> list[object]:
        hub = EventHub(max_backlog=2)
        idle, behind = hub.subscribe(), hub.subscribe()
        for n in range(2):  # `behind` never reads: its queue is full
            behind.put_nowait(b"frame %d" % n)
        hub.close_all()
        await asyncio.sleep(0)  # the end markers are put from the loop (close_all may be called from any thread)
        return [await idle.get(), [behind.get_nowait() for _ in range(behind.qsize())][-1]]

    assert asyncio.run(scenario()) == [None, None]


def test_a_stream_opened_after_close_all_ends_at_once_and_gets_no_events():
    async def scenario() -> list[object]:
        hub = EventHub()
        hub.close_all()
        late = hub.subscribe()
        hub.publish("alert", {"site_id": "LC-LUXI"})
        await asyncio.sleep(0)
        return [late.get_nowait(), late.qsize()]

    assert asyncio.run(scenario()) == [None, 0]


def test_publish_still_reaches_scoped_clients_before_close():
    async def scenario() -> tuple[int, int]:
        hub = EventHub()
        luxi, other = hub.subscribe({"LC-LUXI"}), hub.subscribe({"LC-XFHG"})
        hub.publish("alert", {"site_id": "LC-LUXI"})
        await asyncio.sleep(0)
        return luxi.qsize(), other.qsize()

    assert asyncio.run(scenario()) == (1, 0)
