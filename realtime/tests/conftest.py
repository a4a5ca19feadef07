"""Websocket test helpers.

pytest-asyncio is not a dependency: an async test is written as ``async def`` and wrapped
by ``@async_test``, which runs it through ``async_to_sync``. Fixtures stay synchronous and
run first; inside the test, database work goes through ``database_sync_to_async`` (it runs
on the test's own thread). Tests that open sockets use ``django_db(transaction=True)``:
services publish on commit, and the consumer's database calls close stale connections,
which must not happen inside the test-case transaction.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import types
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from enque.api.authentication import issue_tokens
from workspaces.models import Agent


def _websocket_communicator() -> type:
    """channels.testing.WebsocketCommunicator. The package's __init__ also imports its live
    server test case, which needs Daphne (django/channels#1942); we serve with uvicorn and
    do not install Daphne, so without it the submodules are loaded past that __init__."""
    try:
        from channels.testing import WebsocketCommunicator
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("daphne"):
            raise
        import channels

        package = types.ModuleType("channels.testing")
        package.__path__ = [str(Path(channels.__file__).parent / "testing")]
        sys.modules["channels.testing"] = package
        from channels.testing.websocket import WebsocketCommunicator
    return WebsocketCommunicator


WebsocketCommunicator = _websocket_communicator()

# Long enough for a busy CI machine, short enough that a lost event fails fast.
TIMEOUT = 5.0


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async_to_sync(fn)(*args, **kwargs)

    return wrapper


def access_token(agent: Agent) -> str:
    return issue_tokens(agent)["access"]


async def atoken(agent: Agent) -> str:
    """An access token, from async code (issuing one writes an OutstandingToken row)."""
    return await database_sync_to_async(access_token)(agent)


class Socket:
    """A WebsocketCommunicator that speaks the realtime protocol."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, message: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        if data is not None:
            await self.communicator.send_input({"type": "websocket.receive", "bytes": data})
        else:
            await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def receive(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout))

    async def receive_type(self, type_: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of this type; frames of other types before it are skipped."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.receive(max(left, 0.01))
            if frame["type"] == type_:
                return frame

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def closed_with(self, timeout: float = TIMEOUT) -> int | None:
        """Skip frames until the server closes; its close code."""
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output.get("code")

    async def subscribe(self, channel: str) -> dict[str, Any]:
        await self.send({"type": "subscribe", "payload": {"channel": channel}})
        return await self.receive()

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_socket(
    token: str | None = None,
    *,
    path: str = "/realtime",
    query: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[Socket, dict[str, Any] | int]:
    """Connect; (socket, the welcome frame) or (socket, the close code) when refused."""
    from enque.asgi import application

    params = "&".join(p for p in (f"token={token}" if token else "", query) if p)
    communicator = WebsocketCommunicator(
        application, f"{path}?{params}" if params else path, headers=headers or []
    )
    accepted, code = await communicator.connect(timeout=TIMEOUT)
    socket = Socket(communicator)
    if not accepted:
        return socket, code
    output = await communicator.receive_output(TIMEOUT)
    if output["type"] == "websocket.close":
        return socket, output.get("code")
    return socket, json.loads(output["text"])


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> None:
    # Each test runs its own event loop; a layer instance keeps per-loop receive state, so a
    # test that failed with a socket still open must not hand that state to the next one.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
