"""Class-per-folder image trees read with Pillow, and their seeded per-class split."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from data.dataset import DatasetError, ImageDataset
from data.imagefolder import load_image_folder, read_images, scan_image_folder

COUNTS = {"zebra": 10, "ant": 5, "moth": 7}  # written out of order on purpose


def _all_images(dataset: ImageDataset) -> list[tuple[bytes, str]]:
    """Every (HWC bytes, class name) of every split, for comparison with what was written."""
    pairs = []
    splits = [(dataset.train_images, dataset.train_labels),
              (dataset.val_images, dataset.val_labels)]
    if dataset.test_images is not None and dataset.test_labels is not None:
        splits.append((dataset.test_images, dataset.test_labels))
    for images, labels in splits:
        for image, label in zip(images, labels):
            pixels = image.permute(1, 2, 0).numpy()
            if pixels.shape[2] == 1:
                pixels = pixels[:, :, 0]
            pairs.append((pixels.tobytes(), dataset.classes[int(label)]))
    return pairs


def test_png_folder_round_trips_every_pixel(tmp_path: Path, writers: SimpleNamespace) -> None:
    written = writers.make_image_folder(tmp_path, COUNTS, size=(7, 5))
    dataset = load_image_folder(tmp_path)
    assert dataset.classes == ("ant", "moth", "zebra")
    assert dataset.name == f"imagefolder:{tmp_path}"
    assert dataset.input_shape == (3, 5, 7)  # height 5, width 7
    assert dataset.train_images.dtype == torch.uint8
    assert dataset.train_labels.dtype == torch.int64
    pairs = _all_images(dataset)
    assert len(pairs) == sum(COUNTS.values())
    assert dict(pairs) == written  # each image once, with its own folder's label


def test_split_is_80_20_per_class(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, COUNTS)
    dataset = load_image_folder(tmp_path)
    # ant 5 -> 1 val, moth 7 -> 1 (1.4 rounds down), zebra 10 -> 2
    assert torch.bincount(dataset.val_labels, minlength=3).tolist() == [1, 1, 2]
    assert torch.bincount(dataset.train_labels, minlength=3).tolist() == [4, 6, 8]


def test_test_fraction_adds_a_disjoint_stratified_test_split(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    written = writers.make_image_folder(tmp_path, COUNTS)
    dataset = load_image_folder(tmp_path, val_fraction=0.15, test_fraction=0.15, seed=2)
    assert dataset.test_labels is not None
    # ant 5 -> 1/1 (0.75 rounds up), moth 7 -> 1/1, zebra 10 -> 2/2 (1.5 rounds up)
    assert torch.bincount(dataset.val_labels, minlength=3).tolist() == [1, 1, 2]
    assert torch.bincount(dataset.test_labels, minlength=3).tolist() == [1, 1, 2]
    assert torch.bincount(dataset.train_labels, minlength=3).tolist() == [3, 5, 6]
    pairs = _all_images(dataset)
    assert len(pairs) == sum(COUNTS.values()) and dict(pairs) == written  # each image once
    again = load_image_folder(tmp_path, val_fraction=0.15, test_fraction=0.15, seed=2)
    assert again.test_images is not None and dataset.test_images is not None
    assert torch.equal(again.test_images, dataset.test_images)
    assert load_image_folder(tmp_path).test_images is None  # the thesis' 80/20 by default


def test_a_class_too_small_for_three_splits_is_named(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_image_folder(tmp_path, {"a": 4, "b": 2})
    with pytest.raises(DatasetError, match=r"class folder .*b has only 2 images; the "
                       "train/validation/test split needs at least 3 per class"):
        load_image_folder(tmp_path, val_fraction=0.15, test_fraction=0.15)


def test_split_is_seeded(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 20, "b": 20})
    first = load_image_folder(tmp_path, seed=3)
    again = load_image_folder(tmp_path, seed=3)
    other = load_image_folder(tmp_path, seed=4)
    assert torch.equal(first.val_images, again.val_images)
    assert torch.equal(first.train_images, again.train_images)
    assert not torch.equal(first.val_images, other.val_images)


def test_extensions_are_case_insensitive_and_other_files_ignored(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_image_folder(tmp_path, {"a": 3}, ext=".PNG")
    writers.make_image_folder(tmp_path, {"b": 2}, ext=".Bmp", seed=1)
    writers.make_image_folder(tmp_path, {"b": 1}, ext=".TIF", seed=2)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"junk")
    (tmp_path / ".cache").mkdir()
    paths, labels, classes = scan_image_folder(tmp_path)
    assert classes == ("a", "b")
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert {p.suffix for p in paths} == {".PNG", ".Bmp", ".TIF"}


def test_all_grayscale_images_give_one_channel(tmp_path: Path, writers: SimpleNamespace) -> None:
    written = writers.make_image_folder(tmp_path, {"a": 3, "b": 3}, mode="L")
    dataset = load_image_folder(tmp_path)
    assert dataset.input_shape == (1, 5, 7)
    assert dict(_all_images(dataset)) == written


def test_mixed_grayscale_and_colour_give_rgb(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 2}, mode="L")
    writers.make_image_folder(tmp_path, {"b": 2}, mode="RGB")
    gray = np.asarray(Image.open(tmp_path / "a" / "a_0.png"))
    images = read_images(scan_image_folder(tmp_path)[0])
    assert images.shape == (4, 3, 5, 7)
    for channel in range(3):
        assert np.array_equal(images[0, channel].numpy(), gray)


def test_jpeg_extensions_and_palette_images_load(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(tmp_path / "a" / "x.jpeg")
    Image.new("RGB", (4, 4), (10, 200, 10)).save(tmp_path / "a" / "y.JPG")
    Image.new("P", (4, 4), 0).save(tmp_path / "b" / "p.gif")
    Image.new("RGBA", (4, 4), (1, 2, 3, 4)).save(tmp_path / "b" / "q.webp", lossless=True)
    images = read_images(scan_image_folder(tmp_path)[0])
    assert images.shape == (4, 3, 4, 4)
    assert images[3, :, 0, 0].tolist() == [1, 2, 3]  # alpha dropped


def test_mixed_sizes_name_the_file_and_both_sizes(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_image_folder(tmp_path, {"a": 2}, size=(7, 5))
    writers.make_image_folder(tmp_path, {"b": 2}, size=(8, 6))
    with pytest.raises(DatasetError) as info:
        load_image_folder(tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'a' / 'a_0.png'} is 7x5" in message
    assert f"{tmp_path / 'b' / 'b_0.png'} is 8x6" in message
    assert "image_size" in message


def test_image_size_resizes_with_bilinear(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 2}, size=(7, 5))
    writers.make_image_folder(tmp_path, {"b": 3}, size=(12, 12))
    (tmp_path / "c").mkdir()
    Image.new("RGB", (20, 10), (40, 80, 120)).save(tmp_path / "c" / "flat.png")
    Image.new("RGB", (20, 10), (40, 80, 120)).save(tmp_path / "c" / "flat2.png")
    dataset = load_image_folder(tmp_path, image_size=9)
    assert dataset.input_shape == (3, 9, 9)
    flat = torch.cat([dataset.train_images, dataset.val_images])[
        torch.cat([dataset.train_labels, dataset.val_labels]) == 2
    ]
    assert flat.shape == (2, 3, 9, 9)
    assert flat[:, :, :, :].amin(dim=(0, 2, 3)).tolist() == [40, 80, 120]
    assert flat[:, :, :, :].amax(dim=(0, 2, 3)).tolist() == [40, 80, 120]


def test_image_size_must_be_positive(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(DatasetError, match="image_size must be a positive integer"):
        load_image_folder(tmp_path, image_size=0)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist or is not a directory"):
        load_image_folder(tmp_path / "nope")


def test_fewer_than_two_classes(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"only": 4})
    with pytest.raises(DatasetError, match="needs at least 2 class sub-folders, found 1"):
        load_image_folder(tmp_path)


def test_class_without_images(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 4})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("nothing here")
    with pytest.raises(DatasetError, match=r"class folder .*empty has no images"):
        load_image_folder(tmp_path)


def test_class_with_one_image_cannot_be_split(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 4, "b": 1})
    with pytest.raises(DatasetError, match=r"class folder .*b has only 1 image"):
        load_image_folder(tmp_path)


def test_corrupt_image_is_named(tmp_path: Path, writers: SimpleNamespace) -> None:
    writers.make_image_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png"):
        load_image_folder(tmp_path)


def test_many_images_take_the_threaded_path(tmp_path: Path, writers: SimpleNamespace) -> None:
    written = writers.make_image_folder(tmp_path, {"a": 80, "b": 70}, size=(4, 3))
    dataset = load_image_folder(tmp_path, seed=1)
    assert dict(_all_images(dataset)) == written


# --------------------------------------------------------------------------- hostile folders


def _png_of_zeros(path: Path, width: int, height: int) -> Path:
    """A genuine 8-bit greyscale PNG of ``width`` x ``height`` black pixels, written without
    ever holding the pixels in memory (zeros deflate about 1000:1): a decompression bomb."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the pixels
    rows_per_block = max(1, 2**24 // len(row))
    parts = []
    for start in range(0, height, rows_per_block):
        parts.append(compressor.compress(row * min(rows_per_block, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # pytest resets
@pytest.mark.parametrize("side", [13_400, 10_000], ids=["over-pillow-error", "over-warning"])
def test_decompression_bomb_is_one_dataset_error_naming_the_file(
    tmp_path: Path, writers: SimpleNamespace, side: int
) -> None:
    writers.make_image_folder(tmp_path, {"a": 2, "b": 2})
    bomb = _png_of_zeros(tmp_path / "b" / "bomb.png", side, side)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(DatasetError) as info:
        load_image_folder(tmp_path, image_size=8)
    message = str(info.value)
    assert "bomb.png" in message and "pixels" in message and "\n" not in message


def _sixteen_bit(values: np.ndarray) -> Image.Image:
    image = Image.fromarray(values.astype(np.uint16))
    assert image.mode.startswith("I;16")
    return image


def test_sixteen_bit_greyscale_is_scaled_to_eight_bits_and_stays_greyscale(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    written = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(3):
            eight = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
            _sixteen_bit(eight.astype(np.uint16) * 257).save(tmp_path / name / f"{index}.png")
            written[eight.tobytes()] = name
    with Image.open(tmp_path / "a" / "0.png") as image:
        assert image.mode in {"I;16", "I"}  # what Pillow opens 16-bit PNGs as
    dataset = load_image_folder(tmp_path)
    assert dataset.input_shape == (1, 5, 7)
    assert dict(_all_images(dataset)) == written


def test_sixteen_bit_tiff_and_png_mixed_with_colour_keep_their_grey_levels(
    tmp_path: Path,
) -> None:
    for name in ("grey", "colour"):
        (tmp_path / name).mkdir()
    ramp = (np.arange(35, dtype=np.uint16).reshape(5, 7) * 1800)  # 0 .. 61200
    _sixteen_bit(ramp).save(tmp_path / "grey" / "ramp.png")
    _sixteen_bit(ramp).save(tmp_path / "grey" / "ramp.tif")
    Image.new("RGB", (7, 5), (10, 20, 30)).save(tmp_path / "colour" / "x.png")
    Image.new("RGB", (7, 5), (10, 20, 30)).save(tmp_path / "colour" / "y.png")
    images = read_images(scan_image_folder(tmp_path)[0])
    assert images.shape == (4, 3, 5, 7)
    expected = np.round(ramp / 257).astype(np.uint8)
    for index in (2, 3):  # the grey class sorts after "colour"
        for channel in range(3):
            assert np.array_equal(images[index, channel].numpy(), expected)


def test_images_in_nested_sub_folders_belong_to_their_class(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_image_folder(tmp_path, {"a": 2, "b": 2})
    writers.make_image_folder(tmp_path / "a" / "2019", {"batch1": 2}, seed=1)
    writers.make_image_folder(tmp_path / "b" / "deeper", {"still": 3}, seed=2)
    writers.make_image_folder(tmp_path / "b", {".thumbnails": 4}, seed=3)  # hidden: skipped
    paths, labels, classes = scan_image_folder(tmp_path)
    assert classes == ("a", "b")
    assert labels.tolist() == [0] * 4 + [1] * 5
    relative = [p.relative_to(tmp_path).as_posix() for p in paths]
    assert relative == [
        "a/2019/batch1/batch1_0.png", "a/2019/batch1/batch1_1.png", "a/a_0.png", "a/a_1.png",
        "b/b_0.png", "b/b_1.png", "b/deeper/still/still_0.png", "b/deeper/still/still_1.png",
        "b/deeper/still/still_2.png",
    ]
    dataset = load_image_folder(tmp_path)
    assert len(dataset.train_labels) + len(dataset.val_labels) == 9


def test_a_class_whose_images_are_all_in_sub_folders_is_not_empty(
    tmp_path: Path, writers: SimpleNamespace
) -> None:
    writers.make_image_folder(tmp_path, {"a": 2})
    writers.make_image_folder(tmp_path / "b", {"inner": 2})
    assert scan_image_folder(tmp_path)[1].tolist() == [0, 0, 1, 1]


def test_a_folder_too_large_for_memory_is_refused_before_allocating(
    tmp_path: Path, writers: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data.memory_budget

    writers.make_image_folder(tmp_path, {"a": 3, "b": 3}, size=(7, 5))
    monkeypatch.setattr(data.memory_budget, "_budget", lambda: (500, "a test budget"))
    with pytest.raises(DatasetError) as info:
        load_image_folder(tmp_path, image_size=64)
    message = str(info.value)
    assert "6 images of 64x64x3" in message and "a test budget" in message
    assert "dataset.image_size" in message


def test_decode_image_is_one_image_of_read_images(tmp_path: Path) -> None:
    """The single-image reader (``cnnsearch predict``'s) gives what the folder reader gives,
    at native size and resized."""
    from data.imagefolder import decode_image, image_header

    rng = np.random.default_rng(3)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)).save(path)
    assert image_header(path) == ((13, 9), "RGB")
    native = decode_image(path, "RGB")
    assert native.shape == (9, 13, 3)
    assert np.array_equal(native.transpose(2, 0, 1), read_images([path])[0].numpy())
    assert decode_image(path, "L", (6, 6)).shape == (6, 6)
    grey = tmp_path / "g.png"
    Image.fromarray(rng.integers(0, 256, (9, 13), dtype=np.uint8)).save(grey)
    assert np.array_equal(decode_image(grey, "L", (6, 6)),
                          read_images([grey], image_size=6)[0, 0].numpy())
    with pytest.raises(DatasetError, match="cannot read image"):
        (tmp_path / "t.png").write_text("text")
        image_header(tmp_path / "t.png")
# --------------------------------------------------------------------------- links
def test_a_class_folder_that_is_a_link_is_not_a_class(tmp_path: Path,
                                                      writers: SimpleNamespace) -> None:
    """A class linked to /usr would walk all of it; one linked to the folder itself would copy
    every image into a third class. Neither is followed."""
    root = tmp_path / "images"
    writers.make_image_folder(root, {"cat": 3, "dog": 3})
    outside = tmp_path / "outside"
    writers.make_image_folder(outside, {"bird": 4, "fish": 4})
    (root / "usr").symlink_to("/usr", target_is_directory=True)
    (root / "everything").symlink_to(root, target_is_directory=True)
    (root / "bird").symlink_to(outside / "bird", target_is_directory=True)
    paths, labels, classes = scan_image_folder(root)
    assert classes == ("cat", "dog")
    assert len(paths) == 6 and torch.bincount(labels).tolist() == [3, 3]


def test_links_to_folders_inside_a_class_are_not_followed(tmp_path: Path,
                                                          writers: SimpleNamespace) -> None:
    root = tmp_path / "images"
    writers.make_image_folder(root, {"cat": 2, "dog": 2})
    (root / "cat" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dog" / "usr").symlink_to("/usr", target_is_directory=True)
    paths, _, _ = scan_image_folder(root)
    assert len(paths) == 4


def test_a_link_to_a_file_counts_only_inside_the_folder(tmp_path: Path,
                                                        writers: SimpleNamespace) -> None:
    root = tmp_path / "images"
    writers.make_image_folder(root, {"cat": 2, "dog": 2})
    secret = tmp_path / "secret.png"
    Image.new("L", (4, 4)).save(secret)
    (root / "cat" / "secret.png").symlink_to(secret)
    (root / "cat" / "dangling.png").symlink_to(tmp_path / "absent.png")
    (root / "cat" / "loop.png").symlink_to(root / "cat" / "loop.png")
    inside = sorted((root / "dog").iterdir())[0]
    (root / "cat" / "alias.png").symlink_to(inside)
    paths, labels, _ = scan_image_folder(root)
    names = sorted(path.name for path in paths)
    assert "secret.png" not in names and "dangling.png" not in names
    assert "alias.png" in names and len(paths) == 5


def test_only_links_to_folders_is_a_one_line_error_saying_so(tmp_path: Path,
                                                             writers: SimpleNamespace) -> None:
    outside = tmp_path / "outside"
    writers.make_image_folder(outside, {"a": 2, "b": 2})
    root = tmp_path / "images"
    root.mkdir()
    for name in ("a", "b"):
        (root / name).symlink_to(outside / name, target_is_directory=True)
    with pytest.raises(DatasetError, match=r"found 0 \(2 link\(s\) to folders not followed"):
        scan_image_folder(root)


def test_the_cli_reads_a_folder_with_links_as_its_classes_only(tmp_path: Path) -> None:
    """Through ``create-study --prepare-data``: two classes and their own images."""
    from tests.conftest import run_cli, worker_config, write_brightness_folder, write_config

    root = write_brightness_folder(tmp_path / "images", images_per_class=8)
    (root / "usr").symlink_to("/usr", target_is_directory=True)
    (root / "again").symlink_to(root, target_is_directory=True)
    config = write_config(tmp_path / "c.yaml", worker_config(root, "links"))
    result = run_cli("create-study", "--study", "links", "--config", str(config),
                     "--prepare-data", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                     "--artifact-dir", "", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(12 train / 2 validation images)" in result.stdout, result.stdout
