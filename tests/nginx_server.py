"""A private nginx for the deployment tests: snippets/nginx.conf, for real.

Debian's /usr/sbin/nginx, started in the foreground with its pid, logs and
temp files in a temporary folder, on loopback ports, stopped by PID. The
site file is the page's own, with only ports, paths and certificate
locations substituted, as PORT is for the app; a main configuration around
it stands in for Debian's /etc/nginx/nginx.conf.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from support import TIMEOUT, Watched, free_port, snippet

INSTALL = "no nginx: `apt-get install nginx` (Debian), or `brew install nginx` (macOS)"
PUBLIC = "chat.example.com"  # The site's name in snippets/nginx.conf.

MAIN = """\
daemon off;
pid {dir}/nginx.pid;
error_log stderr notice;
{main}
events {{}}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    access_log {dir}/access.log;
    include {dir}/chat.conf;  # Debian's: include /etc/nginx/conf.d/*.conf;
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


class Tls:
    """A test certificate authority, and a certificate from it for PUBLIC."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        issued = self.ca.issue_cert(PUBLIC)
        self.cert, self.key = directory / "fullchain.pem", directory / "privkey.pem"
        self.ca_file = directory / "ca.pem"
        issued.private_key_pem.write_to_path(self.key)
        for blob in issued.cert_chain_pems:
            blob.write_to_path(self.cert, append=True)
        self.ca.cert_pem.write_to_path(self.ca_file)
        leaf = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
        spki = leaf.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        # What Chromium's --ignore-certificate-errors-spki-list takes.
        self.spki = base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def client_context(self) -> ssl.SSLContext:
        """Verify against the test CA, and only it: no system CAs."""
        return ssl.create_default_context(cafile=self.ca_file)


def site(
    apps: tuple[int, int], port: int, tls: Tls, drop: tuple[str, ...], **settings: str
) -> str:
    """snippets/nginx.conf for these ports and certificate files.

    settings: a directive's new value, as a test of a timeout needs;
    drop: the start of lines to leave out, to show what they are for."""
    text = snippet("nginx.conf")
    for shown, ours in [
        ("listen 443 ssl", f"listen 127.0.0.1:{port} ssl"),
        ("127.0.0.1:5042", f"127.0.0.1:{apps[0]}"),
        ("127.0.0.1:5043", f"127.0.0.1:{apps[1]}"),
        (f"/etc/ssl/{PUBLIC}/fullchain.pem", str(tls.cert)),
        (f"/etc/ssl/{PUBLIC}/privkey.pem", str(tls.key)),
    ]:
        assert shown in text, shown
        text = text.replace(shown, ours)
    for start in drop:
        text, count = re.subn(rf"^\s*{re.escape(start)}.*\n", "", text, flags=re.M)
        assert count, start
    for name, value in settings.items():
        text, count = re.subn(
            rf"^(\s*{name}) [^;]*;", rf"\1 {value};", text, flags=re.M
        )
        assert count == 1, name
    return text


class Nginx(Watched):
    """nginx with snippets/nginx.conf in front of two app ports."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        apps: tuple[int, int],
        tls: Tls,
        main: str = "",
        drop: tuple[str, ...] = (),
        **settings: str,
    ) -> None:
        super().__init__("nginx")
        self.binary = binary
        self.tls = tls
        self.directory = directory
        self.port = free_port()
        (directory / "chat.conf").write_text(
            site(apps, self.port, tls, drop, **settings), encoding="utf-8"
        )
        (directory / "nginx.conf").write_text(MAIN.format(dir=directory, main=main))
        self.watch(self.command())
        self.wait_for(r"start worker process \d+")

    def command(self) -> list[str]:
        """nginx with our prefix, main configuration and startup log."""
        conf = self.directory / "nginx.conf"
        return [self.binary, "-p", str(self.directory), "-c", str(conf), "-e", "stderr"]

    @property
    def url(self) -> str:
        return f"https://{PUBLIC}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    def check(self) -> str:
        """`nginx -t`, as the reader types it, for this nginx: its report."""
        done = subprocess.run(
            [*self.command(), "-t"], capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    def reload(self) -> None:
        """`nginx -s reload`, as the reader types it, for this nginx."""
        subprocess.run(
            [*self.command(), "-s", "reload"],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )

    def stop(self) -> None:
        """SIGTERM: nginx's fast stop, which cuts open sockets; then wait."""
        self.end(signal.SIGTERM)
