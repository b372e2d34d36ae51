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
        assert cork._own is None  # nothing duplicated for a socket without TCP
        Cork(None).hold()


def test_the_duplicate_descriptor_is_made_once_and_closed_the_socket_stays_open() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as client,
    ):
        cork = Cork(client)
        cork.release()
        assert cork._own is None  # never corked: nothing duplicated
        cork.hold()
        own = cork._own
        assert own is not None and own.fileno() != client.fileno()
        for _ in range(3):
            cork.release()
            cork.hold()
        assert cork._own is own  # one duplicate for the connection's life
        cork.close()
        assert own.fileno() == -1 and cork._own is None
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0  # released
        client.sendall(b"still open")
        peer, _ = server.accept()
        with peer:
            assert peer.recv(16) == b"still open"
