"""The Kaggle helper: uses a copy on disk, fails fast and plainly offline, never downloads in tests."""

import shutil
import sys
import time
import types

import pytest

from fishcam_utils.data import kaggle
from fishcam_utils.data.layouts import scan_dataset
from fishcam_utils.errors import OfflineError


@pytest.fixture
def no_network(monkeypatch):
    monkeypatch.setattr(kaggle, "network_available", lambda *a, **k: False)


@pytest.fixture
def fake_kagglehub(monkeypatch):
    module = types.SimpleNamespace(calls=[])

    def dataset_download(handle):
        module.calls.append(handle)
        return module.result

    module.dataset_download = dataset_download
    monkeypatch.setitem(sys.modules, "kagglehub", module)
    monkeypatch.setenv("KAGGLEHUB_CACHE", "/nonexistent/kagglehub")
    return module


def test_offline_fails_within_seconds_and_says_where_to_put_the_files(no_network, fake_kagglehub):
    start = time.perf_counter()
    with pytest.raises(OfflineError) as info:
        kaggle.download_kaggle_fish()
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert kaggle.KAGGLE_URL in message and str(kaggle.default_kaggle_dir()) in message
    assert "fishcam make-data" in message
    assert fake_kagglehub.calls == []


def test_without_kagglehub_the_message_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # makes the import fail
    monkeypatch.setenv("KAGGLEHUB_CACHE", "/nonexistent/kagglehub")
    with pytest.raises(OfflineError, match="pip install kagglehub"):
        kaggle.download_kaggle_fish()


def test_a_copy_on_disk_is_used_without_the_network(tiny_kaggle, monkeypatch):
    shutil.copytree(tiny_kaggle, kaggle.default_kaggle_dir() / "Fish_Dataset")

    def boom(*args, **kwargs):
        raise AssertionError("the network must not be touched")

    monkeypatch.setattr(kaggle, "network_available", boom)
    found = kaggle.download_kaggle_fish()
    assert found == kaggle.default_kaggle_dir() / "Fish_Dataset" / "Fish_Dataset"
    assert scan_dataset(found).layout == "kaggle"


def test_a_download_is_located_and_readable(tiny_kaggle, fake_kagglehub, monkeypatch):
    monkeypatch.setattr(kaggle, "network_available", lambda *a, **k: True)
    fake_kagglehub.result = str(tiny_kaggle.parent)
    found = kaggle.download_kaggle_fish()
    assert fake_kagglehub.calls == [kaggle.KAGGLE_HANDLE]
    index = scan_dataset(found)
    assert index.layout == "kaggle" and len(index) == 36 and index.mask_kinds[0] == "body"


def test_a_failed_download_is_reported_with_the_manual_route(fake_kagglehub, monkeypatch):
    monkeypatch.setattr(kaggle, "network_available", lambda *a, **k: True)

    def refuse(handle):
        raise PermissionError("401 Unauthorized")

    fake_kagglehub.dataset_download = refuse
    with pytest.raises(OfflineError, match="401 Unauthorized.*Download it on a machine"):
        kaggle.download_kaggle_fish()


def test_network_check_answers_quickly_for_a_closed_port():
    start = time.perf_counter()
    assert kaggle.network_available("127.0.0.1", port=9, timeout=1.0) is False
    assert time.perf_counter() - start < 2
