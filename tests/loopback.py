"""Free ports on the loopback interface, for tests that start clusters."""

import socket
from typing import List


def free_ports(count: int) -> List[int]:
  """Ports free on 127.0.0.1 (bound to port 0, then released).

  Args:
    count: how many.

  Returns:
    `count` distinct port numbers.
  """
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()
