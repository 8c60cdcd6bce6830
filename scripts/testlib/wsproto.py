"""RFC 6455 pieces shared by the Python tests' WebSocket clients and servers
(api/tests/dp_client.py, api/tests/test_cli_stream.py, router/tests/backend.py,
router/tests/ws_echo.py). Standard library only. Imported with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)),
                                    "../../scripts/testlib"))"""
import base64
import hashlib
import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    """The Sec-WebSocket-Accept for the Sec-WebSocket-Key KEY (str or bytes)."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def send_upgrade(handler):
    """Answers an http.server handler's upgrade request: 101 with the accept key."""
    handler.send_response(101)
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept",
                        accept_key(handler.headers.get("Sec-WebSocket-Key", "")))
    handler.end_headers()
    handler.wfile.flush()


def unmask(data, mask):
    """DATA xor the 4-byte MASK repeated (its own inverse)."""
    n = len(data)
    if n < 4096:
        return bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode(op, payload, masked=False):
    """One final frame: opcode OP, PAYLOAD, masked (as a client must) when MASKED."""
    n = len(payload)
    bit = 0x80 if masked else 0
    head = bytes([0x80 | op])
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + unmask(payload, mask)


def decode(read):
    """The next frame as (fin, opcode, masked, payload), payload unmasked. READ(n)
    returns n bytes; fewer (the end of the stream) raise EOFError."""
    def exact(n):
        data = read(n) if n else b""
        if len(data) < n:
            raise EOFError("connection closed")
        return data

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    mask = exact(4) if b1 & 0x80 else None
    data = exact(n)
    return bool(b0 & 0x80), b0 & 0x0F, mask is not None, unmask(data, mask) if mask else data
