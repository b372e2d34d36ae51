"""One client socket from admission to close: it reads messages within the connection's
budgets and hands them to its `MessageHandler`, runs the ack/metrics ticker, ends the
session with its summary on `stop`, and drains on a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from loguru import logger

from backend.budgets import MessageBudgets
from backend.config import BackendConfig
from backend.handler import MessageHandler
from backend.outgoing import Outgoing
from backend.store import BackendSession, SessionStore
from backend.summary import final_summary
from backend.ticker import ack, tick
from pipeline.messages import to_wire
from pipeline.protocol import ErrorMessage, Status

NO_START = "No start within {timeout:g} s: closing"


class ClientConnection:
    """One client socket: `start`, audio, acks, metrics, `stop`."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        store: SessionStore,
        config: BackendConfig,
    ) -> None:
        self.ws, self.store, self.config = ws, store, config
        self.draining = False  # the backend is shutting down: nothing more is taken
        self.stopping: asyncio.Task[None] | None = None  # flush + summary, while we keep reading
        self.outgoing = Outgoing(ws)
        self.tasks: list[asyncio.Task[None]] = []
        self.log = logger.bind(peer="client")
        self.budgets = MessageBudgets(config)
        self.handler = MessageHandler(self)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the socket's single writer, which keeps their order."""
        self.outgoing.send(message)

    async def close_after(self, message: dict[str, Any], code: int, reason: bytes = b"") -> None:
        """Send `message` after everything queued, then close the socket with `code`."""
        self.send(message)
        await self.outgoing.flush()
        await self.ws.close(code=code, message=reason)

    async def run(self) -> None:
        self.outgoing.start()
        self._spawn(self._start_deadline())
        try:
            await self._read()
        finally:
            await self._end()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for msg in self.ws:
            wait, warning = self.budgets.pace(loop.time())
            if warning is not None:
                self.log.info("{}", warning)
                self.send(to_wire(Status(state="warning", message=warning)))
            if wait > 0:
                await asyncio.sleep(wait)
            done = await self.handler.on_message(msg)
            if done or self.budgets.cut_off:
                break
            if self.handler.full_stream is not None:
                await self.handler.wait_for_room()
        if self.budgets.cut_off:
            await self._cut_off()

    async def _end(self) -> None:
        if self.stopping is not None:  # it closes the socket itself; let it finish
            await asyncio.gather(self.stopping, return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, *self.outgoing.cancel(), return_exceptions=True)
        session = self.handler.session
        if session is not None and not self.handler.stopped:
            self.store.lost(session, self)

    async def _start_deadline(self) -> None:
        """A socket that sends no `start` in time holds a slot for nothing: close it."""
        await asyncio.sleep(self.config.start_timeout)
        if self.handler.session is None and not self.ws.closed and not self.draining:
            message = NO_START.format(timeout=self.config.start_timeout)
            self.log.info("{}", message)
            await self.close_after(
                to_wire(Status(state="error", message=message)), 1008, b"no start"
            )

    def refuse(self, reason: str | None) -> None:
        """An invalid message: answer `reason` (None: ignore it quietly). A client that
        keeps sending them is cut off once `max_invalid_rate` is spent."""
        if not self.budgets.spend_invalid(asyncio.get_running_loop().time()) and reason is not None:
            self.send(to_wire(ErrorMessage(message=reason)))

    async def _cut_off(self) -> None:
        message = self.budgets.cut_off_message
        self.log.warning("{}", message)
        error = to_wire(Status(state="error", message=message))
        await self.close_after(error, 1008, b"too many invalid messages")

    def start_ticker(self, session: BackendSession) -> None:
        """Acks and metrics of the session just started, until the socket closes."""
        ticker = tick(
            session,
            self.config,
            acks=self.handler.v03,
            send=self.send,
            closed=lambda: self.ws.closed,
        )
        self._spawn(ticker)

    def supersede(self) -> None:
        """A resumed connection took this session over: this socket is stale."""
        self.log.info("superseded by a resumed connection")
        self._spawn(self.ws.close(code=1000, message=b"superseded"))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    # -- drain ----------------------------------------------------------------------

    async def drain(self, ending: bool = True) -> None:
        """Stop taking audio, transcribe what was acknowledged, send it, close with 1012.

        Frames not yet acknowledged are the client's: it resends them to the next backend.
        `ending`: the session ends with this process, so its utterances are closed; else
        (v0.3, a store that outlives the process) they stay open for the resumed session.
        Bounded by `shutdown_grace`; past it the connection closes with what it has.
        """
        self.draining = True
        session = self.handler.session
        if self.stopping is not None or self.ws.closed:
            return
        if session is not None and session.owner is self:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._transcribe_acked(session, ending), self.config.shutdown_grace
                )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.outgoing.flush(), self.config.shutdown_grace)
        await self.ws.close(code=1012, message=b"server restarting")

    async def _transcribe_acked(self, session: BackendSession, ending: bool) -> None:
        v03 = self.handler.v03
        if v03:  # queued frames were never acked: the client keeps them, resends them
            for source, stream in session.streams.items():
                stream.forget_unacked()
                ack(session, source, self.send)
        # a v0.2 client cannot resend: everything it delivered is transcribed; a session that
        # outlives this process keeps its utterances open for the resumed session
        if ending or not v03:
            await asyncio.gather(*(stream.finish() for stream in session.streams.values()))
        await session.state.settled()

    # -- stop -----------------------------------------------------------------------

    def stop(self, session: BackendSession) -> None:
        """Flushing the recognisers can take seconds: do it aside and keep reading the
        socket, which is what answers the client's heartbeat pings."""
        self.stopping = asyncio.get_running_loop().create_task(self._finish(session))

    async def _finish(self, session: BackendSession) -> None:
        """Flush every recogniser, send `final_summary`, close."""
        try:
            await self._summarise(session)
        except Exception as exc:
            session.log.opt(exception=exc).error("stop failed")
            self.send(to_wire(Status(state="error", message="stop failed")))
            await self.outgoing.flush()
            session.detach(self)
            self.store.discard(session)
            await self.ws.close(code=1011)

    async def _summarise(self, session: BackendSession) -> None:
        await asyncio.gather(*(stream.finish() for stream in session.streams.values()))
        await session.state.settled()
        if self.handler.v03:
            for source in session.streams:
                ack(session, source, self.send)
        self.send(to_wire(final_summary(session)))
        await self.outgoing.flush()
        session.detach(self)
        await session.state.end()
        self.store.discard(session)
        await self.ws.close(code=1000)
