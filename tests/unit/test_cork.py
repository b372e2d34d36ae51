"""Cork: TCP_CORK held around a backlog and released, on a real loopback socket."""

from __future__ import annotations

import socket

from pipeline.connection import Cork


def test_hold_and_release_toggle_tcp_cork() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as client,
    ):
        cork = Cork(client)

        def corked() -> int:
            return client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)

        assert corked() == 0
        cork.hold()
        cork.hold()  # idempotent
        assert corked() == 1
        cork.release()
        assert corked() == 0
        cork.release()
        assert corked() == 0


def test_a_socket_without_tcp_is_left_alone() -> None:
    left, right = socket.socketpair()  # AF_UNIX: no TCP options
    with left, right:
        cork = Cork(left)
        cork.hold()
        cork.release()
        assert Cork(None)._set is None
