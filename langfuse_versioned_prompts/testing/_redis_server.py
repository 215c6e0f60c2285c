"""``RedisTestServer``: a real ``redis-server`` on 127.0.0.1 for tests, killable and restartable."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from .._errors import ConfigurationError

logger = logging.getLogger(__name__)
_FALLBACK_PATHS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server")
_INSTALL_HINT = (
    "install Redis (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`) "
    "or pass executable=/path/to/redis-server"
)


def find_redis_server() -> str:
    """The path of ``redis-server`` on PATH or in the usual places; a clear error when absent."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in _FALLBACK_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise ConfigurationError(f"redis-server was not found on PATH or in /usr/bin: {_INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ping(port: int, timeout: float) -> bool:
    """Whether a Redis on ``port`` answers PING with PONG (raw RESP, no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisTestServer:
    """A throwaway ``redis-server`` on a free 127.0.0.1 port, without persistence.

    ``stop()`` kills it (like a crash), ``restart()`` brings it back on the same port, empty.

    >>> with RedisTestServer() as redis_server:  # doctest: +SKIP
    ...     redis_server.url
    'redis://127.0.0.1:...'
    """

    def __init__(
        self, *, port: int | None = None, executable: str | None = None,
        startup_timeout: float = 10.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._executable = executable
        self._port = port
        self._startup_timeout = startup_timeout
        self._clock = clock
        self._process: subprocess.Popen[bytes] | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def port(self) -> int:
        """The TCP port (chosen at the first ``start()`` unless given)."""
        if self._port is None:
            raise ConfigurationError("RedisTestServer is not started: call start() or use `with`")
        return self._port

    @property
    def url(self) -> str:
        """A ``redis://`` URL for redis-py's ``Redis.from_url``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisTestServer:
        """Start ``redis-server`` and wait (bounded) until it answers PING."""
        if self.running:
            return self
        self.stop()  # reap a process that died on its own (and close its pipe)
        executable = self._executable or find_redis_server()
        if not os.access(executable, os.X_OK):
            raise ConfigurationError(f"redis-server not found at {executable!r}: {_INSTALL_HINT}")
        if self._port is None:
            self._port = _free_port()
        if self._tempdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="lvp-redis-")
        workdir = Path(self._tempdir.name)
        log_path = workdir / "redis.log"
        command = [
            executable, "--port", str(self._port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), "--logfile", str(log_path),
            "--protected-mode", "yes", "--daemonize", "no",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = self._clock() + self._startup_timeout
        while self._clock() < deadline:
            if self._process.poll() is not None:
                break
            if _ping(self._port, timeout=0.2):
                logger.debug("redis-server ready on port %s", self._port)
                return self
            time.sleep(0.02)
        self._fail_start(log_path)

    def _fail_start(self, log_path: Path) -> NoReturn:
        process, self._process = self._process, None
        what = f"did not answer PING within {self._startup_timeout:g} s"
        stderr = b""
        if process is not None:
            if process.poll() is None:
                process.kill()
            else:
                what = f"exited with code {process.returncode} before answering PING"
            stderr = process.communicate(timeout=5)[1] or b""
        log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        raise ConfigurationError(
            f"redis-server on 127.0.0.1:{self._port} {what} (is the port taken?). stderr: "
            f"{stderr.decode(errors='replace')[-1000:]!r}; log: {log!r}"
        )

    def stop(self) -> None:
        """Kill the process (SIGKILL, like a crash) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)

    def restart(self) -> RedisTestServer:
        """Kill and start again on the same port (the data is gone: no persistence)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> RedisTestServer:
        try:
            return self.start()
        except BaseException:
            self.close()  # ``__exit__`` will not run: remove the temporary directory here
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
