# Connects to a listener the test started on the host's 127.0.0.1: must fail (own network namespace).
import socket

try:
    socket.create_connection(("127.0.0.1", ARGS["port"]), timeout=2).close()
    print("connected")
except OSError as exc:
    print("no connection:", type(exc).__name__, exc.errno)
