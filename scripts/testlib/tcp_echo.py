"""A TCP echo service on loopback for the tunnel tests (api/tests/dp_client.py,
api/tests/test_cli_stream.py): every connection gets back what it sends, in a thread
of its own, until it closes. Standard library only."""
import socket
import threading


def _serve(conn):
    with conn:
        while True:
            d = conn.recv(65536)
            if not d:
                return
            conn.sendall(d)


def start():
    """Starts the service in daemon threads; returns its port on 127.0.0.1."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=_serve, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]
