"""The decode-once cache: the same bytes as decoding, rebuilt when files or size change."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from fishcam_utils.data.cache import DecodedCache
from fishcam_utils.data.datasets import FishImageDataset
from fishcam_utils.data.images import read_image, read_mask
from fishcam_utils.data.layouts import scan_dataset
from fishcam_utils.errors import DataError


def _files(folder, n=6, size=(50, 37)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_cached_images_equal_decoded_images_byte_for_byte(tmp_path):
    paths = _files(tmp_path / "img")
    cache = DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False).build()
    assert cache.file.is_file() and cache.array.shape == (6, 24, 24, 3)
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(cache[i], read_image(path, 24))


def test_masks_are_cached_as_booleans(tiny_synth, tmp_path):
    index = scan_dataset(tiny_synth)
    paths = index.frame["mask_evidence"][:10]
    cache = DecodedCache(paths, 16, kind="mask", cache_dir=tmp_path, progress=False)
    assert cache.array.dtype == bool and cache.array.shape == (10, 16, 16)
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(cache[i], read_mask(path, 16))


def test_a_built_cache_is_reused_by_the_next_run(tmp_path):
    paths = _files(tmp_path / "img")
    first = DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False).build()
    stamp = first.file.stat().st_mtime_ns
    second = DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False)
    assert second.is_built and second.file == first.file
    second.build()
    assert second.file.stat().st_mtime_ns == stamp


def test_a_changed_file_or_size_makes_a_new_cache_and_removes_the_stale_one(tmp_path):
    paths = _files(tmp_path / "img")
    old = DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False).build()
    Image.fromarray(np.full((37, 50, 3), 9, np.uint8)).save(paths[2])
    os.utime(paths[2], ns=(old.file.stat().st_mtime_ns + 10**9,) * 2)
    new = DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False)
    assert not new.is_built and new.file != old.file
    assert (new[2] == 9).all()
    assert not old.file.exists()
    other_size = DecodedCache(paths, 16, cache_dir=tmp_path / "c", progress=False).build()
    assert other_size.file != new.file and new.file.exists()  # other sizes live side by side


def test_every_unreadable_file_is_named_at_once_and_nothing_half_built_stays(tmp_path):
    paths = _files(tmp_path / "img")
    paths[1].write_bytes(b"junk")
    paths[4].write_bytes(paths[0].read_bytes()[:100])
    cache = DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(DataError) as info:
        cache.build()
    assert "2 file(s) could not be read" in str(info.value)
    assert str(paths[1]) in str(info.value) and str(paths[4]) in str(info.value)
    assert list((tmp_path / "c").iterdir()) == []


def test_worker_processes_get_a_light_copy(tmp_path):
    paths = _files(tmp_path / "img", n=20, size=(80, 80))
    cache = DecodedCache(paths, 64, cache_dir=tmp_path / "c", progress=False).build()
    cache[0]
    payload = pickle.dumps(cache)
    assert len(payload) < 20 * 64 * 64 * 3 / 10  # the array is not pickled
    np.testing.assert_array_equal(pickle.loads(payload)[7], cache[7])


def test_datasets_read_the_same_with_and_without_the_cache(tiny_synth, tmp_path):
    index = scan_dataset(tiny_synth).subset(split="train")
    plain = FishImageDataset(index, image_size=24, masks=["evidence"])
    cached = FishImageDataset(index, image_size=24, masks=["evidence"], cache=True, cache_dir=tmp_path, progress=False)
    for i in range(0, len(plain), 7):
        a, b = plain[i], cached[i]
        assert a[1] == b[1]
        assert np.array_equal(a[0].numpy(), b[0].numpy())
        assert np.array_equal(a[2]["evidence"].numpy(), b[2]["evidence"].numpy())
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.npy")) == ["mask", "rgb"]


def test_tiny_images_are_named_with_their_size_when_cached(tmp_path):
    from fishcam_utils.errors import DataWarning

    paths = _files(tmp_path / "img", n=3)
    Image.new("RGB", (1, 1), (9, 9, 9)).save(paths[1])
    with pytest.warns(DataWarning, match=r"1 image\(s\) have a side under 16 pixels") as record:
        DecodedCache(paths, 24, cache_dir=tmp_path / "c", progress=False).build()
    assert f"{paths[1]} (1x1 px)" in str(record[0].message)


def test_temp_files_of_killed_builds_are_removed_and_live_ones_kept(tmp_path):
    from fishcam_utils import files

    cache_dir = tmp_path / "c"
    cache_dir.mkdir()
    name = ".rgb-24x24-abc-def.npy"
    dead = cache_dir / f"{name}.{files._HOST}-999999999-0a1b2c3d.tmp"  # this machine, a process that is gone
    alive = cache_dir / f"{name}.{files._HOST}-{os.getppid()}-0a1b2c3d.tmp"  # a build still running here
    elsewhere = cache_dir / f"{name}.ffffffff-123-0a1b2c3d.tmp"  # another machine's, on a shared disk
    long_ago = cache_dir / f"{name}.eeeeeeee-123-0a1b2c3d.tmp"
    legacy = cache_dir / f"{name}.4242.tmp"  # the names of older versions
    for path in (dead, alive, elsewhere, long_ago, legacy):
        path.write_bytes(b"half")
    os.utime(long_ago, (0, 0))
    DecodedCache(_files(tmp_path / "img", n=2), 24, cache_dir=cache_dir, progress=False).build()
    assert alive.exists() and elsewhere.exists()
    assert not dead.exists() and not long_ago.exists() and not legacy.exists()
    assert not [p for p in cache_dir.iterdir() if p.name.endswith(".tmp") and p not in (alive, elsewhere)]
