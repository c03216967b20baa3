"""Is the internet there? One answer for every download of the course (ImageNet weights, Kaggle).

A machine behind a proxy (a university's, set in ``HTTPS_PROXY``) cannot open a connection to a
server outside, but its downloads work through the proxy: so the check connects to the proxy
that Python's own downloads would use (urllib's ``getproxies``, skipping hosts in ``NO_PROXY``),
and to the server itself only when there is none. It never waits longer than ``timeout``.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlparse

_DEFAULT_PORTS = {"http": 80, "https": 443}


def proxy_for(host: str, scheme: str = "https") -> tuple[str, int] | None:
    """(host, port) of the proxy a download of ``scheme://host`` goes through, or None for a
    direct connection (no proxy set, or ``host`` listed in ``NO_PROXY``)."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or _DEFAULT_PORTS.get(parsed.scheme, 80)


def can_connect(host: str, port: int = 443, timeout: float = 3.0, scheme: str = "https") -> bool:
    """True if a connection towards ``host`` opens within ``timeout`` seconds: to the proxy for
    ``scheme`` when one is set for this host, else to ``host:port`` itself."""
    target = proxy_for(host, scheme) or (host, port)
    try:
        with socket.create_connection(target, timeout=timeout):
            return True
    except OSError:
        return False


def route(host: str, scheme: str = "https") -> str:
    """How a download from ``host`` goes, for messages: "" (directly) or " through the proxy H:P"."""
    proxy = proxy_for(host, scheme)
    return f" through the proxy {proxy[0]}:{proxy[1]} (HTTPS_PROXY)" if proxy else ""
