"""fishcam_utils.network: proxies are honoured (a university proxy user is not told she is
offline), NO_PROXY is skipped, and ImageNet weights are downloaded hash-checked and read as tensors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import threading

import pytest
import torch

from fishcam_utils.errors import OfflineError
from fishcam_utils.models import pretrained
from fishcam_utils.network import can_connect, proxy_for

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
                   "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def listener():
    """A local TCP server that accepts connections (a stand-in proxy); yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once the probe closes: nothing listens there


def test_without_a_proxy_the_server_itself_is_tried(listener):
    assert proxy_for("example.org") is None
    assert can_connect("127.0.0.1", listener, timeout=2)
    assert not can_connect("127.0.0.1", _closed_port(), timeout=2)


def test_behind_a_proxy_a_server_out_of_reach_still_counts_as_online(monkeypatch, listener):
    # The server's name does not even resolve here: only the proxy is reachable, as on a campus.
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener}")
    assert proxy_for("download.pytorch.org") == ("127.0.0.1", listener)
    assert can_connect("no-such-host.invalid", 443, timeout=2)
    monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{_closed_port()}")  # no scheme, as people often write it
    assert not can_connect("no-such-host.invalid", 443, timeout=2)


def test_hosts_in_no_proxy_are_reached_directly(monkeypatch, listener):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_closed_port()}")  # a dead proxy
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert proxy_for("127.0.0.1") is None
    assert can_connect("127.0.0.1", listener, timeout=2)  # directly, not through the dead proxy
    assert not can_connect("elsewhere.invalid", 443, timeout=2)


def test_the_offline_message_names_the_proxy(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    dead = _closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    with pytest.raises(OfflineError, match=f"through the proxy 127.0.0.1:{dead}"):
        pretrained.imagenet_state_dict("resnet18", "https://download.pytorch.org/models/resnet18-f37072fd.pth",
                                       timeout=1)


@pytest.fixture
def weights_server(tmp_path):
    """An HTTP server of a folder; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _serve(folder, stem: str, obj, hash_prefix: str | None = None) -> str:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    name = f"{stem}-{hash_prefix or hashlib.sha256(data).hexdigest()[:8]}.pth"
    (folder / name).write_bytes(data)
    return name


def test_weights_are_downloaded_hash_checked_cached_and_read_as_tensors(monkeypatch, tmp_path, weights_server):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder, base = weights_server
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "module.fc.bias": torch.randn(2)}
    name = _serve(folder, "tiny", state)
    got = pretrained.imagenet_state_dict("tiny", f"{base}/{name}", timeout=2, progress=False)
    assert set(got) == {"conv.weight", "fc.bias"}  # a DataParallel prefix is dropped
    torch.testing.assert_close(got["conv.weight"], state["conv.weight"], rtol=0, atol=0)  # read back, not computed
    cached = pretrained.weights_cache_dir() / name
    assert cached.is_file() and [p.name for p in cached.parent.iterdir()] == [name]
    (folder / name).unlink()  # the second time the cache answers, without the network
    torch.testing.assert_close(pretrained.imagenet_state_dict("tiny", f"{base}/{name}", timeout=2)["fc.bias"],
                               state["module.fc.bias"], rtol=0, atol=0)


def test_a_download_with_the_wrong_hash_is_refused_and_nothing_is_kept(monkeypatch, tmp_path, weights_server):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder, base = weights_server
    name = _serve(folder, "tampered", {"w": torch.zeros(1)}, hash_prefix="00000000")
    with pytest.raises(OfflineError, match="not the file it should be"):
        pretrained.imagenet_state_dict("tampered", f"{base}/{name}", timeout=2, progress=False)
    cache = pretrained.weights_cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


class _Payload:
    """Not tensors: ``weights_only=True`` must refuse to unpickle it."""


def test_a_download_that_is_not_tensors_is_not_unpickled(monkeypatch, tmp_path, weights_server):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder, base = weights_server
    name = _serve(folder, "pickled", {"w": _Payload()})
    with pytest.raises(ValueError, match="cannot read weights"):
        pretrained.imagenet_state_dict("pickled", f"{base}/{name}", timeout=2, progress=False)
