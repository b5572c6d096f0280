"""The production shape for the deploy drill: Debian's nginx running deploy/nginx/parkgate.conf (ports, upstreams
and certificate paths replaced) as this test's own process, a Redis of the drill's own (it is restarted; the
machine's is shared), and `serve` / `worker` processes that can be stopped, killed and started again."""

import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import ARTIFACTS, ROOT, Process, free_port

NGINX_CONF = ROOT / "deploy" / "nginx" / "parkgate.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def wait_port(port: int, up: bool = True, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} not {'open' if up else 'closed'} after {timeout}s")
        time.sleep(0.05)


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/nginx/parkgate.conf no longer has {old!r}"
    return text.replace(old, new)


@dataclass
class Nginx:
    upstream_ports: list[int]
    directory: Path
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        cert, key = self_signed(self.directory)
        site = NGINX_CONF.read_text()
        servers = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for p in self.upstream_ports)
        shipped = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for p in (8001, 8002, 8003))
        site = _replace(site, shipped, servers)
        site = _replace(site, "    listen 80;\n    listen [::]:80;\n", f"    listen 127.0.0.1:{self.http_port};\n")
        site = _replace(
            site, "    listen 443 ssl;\n    listen [::]:443 ssl;\n", f"    listen 127.0.0.1:{self.https_port} ssl;\n"
        )
        site = _replace(site, "/etc/parkgate/tls/fullchain.pem", str(cert))
        site = _replace(site, "/etc/parkgate/tls/privkey.pem", str(key))
        (self.directory / "parkgate.conf").write_text(site)
        (self.directory / "nginx.conf").write_text(
            f"""worker_processes 1;
pid {self.directory}/nginx.pid;
error_log {self.directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.directory}/body;
    proxy_temp_path {self.directory}/proxy;
    fastcgi_temp_path {self.directory}/fastcgi;
    uwsgi_temp_path {self.directory}/uwsgi;
    scgi_temp_path {self.directory}/scgi;
    include {self.directory}/parkgate.conf;
}}
"""
        )
        args = [NGINX, "-e", "stderr", "-p", str(self.directory), "-c", str(self.directory / "nginx.conf")]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([*args, "-g", "daemon off;"], stderr=subprocess.PIPE, start_new_session=True)
        wait_port(self.https_port)
        return self

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def wss(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(self.directory / "error.log", ARTIFACTS / "drill-nginx-error.log")


@dataclass
class Redis:
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        wait_port(self.port, up=False)


@dataclass
class Serve:
    """One `serve` on fixed ports (nginx's upstream), started again on the same ones after a stop."""

    env: dict[str, str]
    name: str
    http_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    process: Process | None = None

    def start(self) -> "Serve":
        args = ["serve", "--http", f"127.0.0.1:{self.http_port}", "--smtp", f"127.0.0.1:{self.smtp_port}"]
        self.process = Process(args, self.env, self.name).start()
        return self

    def ready(self) -> bool:
        # From 127.0.0.1 (a trusted proxy) saying https, as nginx does: PARKGATE_HTTPS redirects plain requests.
        with contextlib.suppress(httpx.HTTPError):
            url = f"http://127.0.0.1:{self.http_port}/healthz"
            ok = httpx.get(url, headers={"X-Forwarded-Proto": "https"}, timeout=1).status_code == 200
            return ok and port_open(self.smtp_port)
        return False

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.process.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout}s")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return self.process.stop(sig)


def worker(env: dict[str, str], name: str) -> Process:
    return Process(["worker"], env, name).start()


def kill9(process: Process) -> None:
    os.kill(process.proc.pid, signal.SIGKILL)
    process.proc.wait()
    process._log.close()
