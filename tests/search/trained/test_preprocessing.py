"""New images go through the training images' path bit for bit: a folder dataset's Pillow
decoding and resize, a tensor dataset's torch resize; grey, colour, palette, 16-bit, JPEG;
and the files that are no image of the model's are refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.imagefolder import load_image_folder, read_images
from data.registry import RESIZE_PILLOW, RESIZE_TORCH, resize_filter
from data.resize import resize_images
from search.errors import UserError
from search.trained.preprocessing import Preprocessing


def write_images(folder: Path, mode: str, sizes: list[tuple[int, int]], seed: int = 0,
                 ext: str = ".png") -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (width, height) in enumerate(sizes):
        shape = (height, width) if mode == "L" else (height, width, 3)
        path = folder / f"{index}{ext}"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("L", 1)])
def test_a_folder_models_images_match_its_training_images(tmp_path: Path, mode: str,
                                                          channels: int) -> None:
    """``dataset.image_size: 12`` on a folder of mixed sizes: each file read by predict is
    the tensor the training read (Pillow decode + bilinear resize, the same call)."""
    paths = write_images(tmp_path, mode, [(20, 16), (12, 12), (9, 30), (40, 40)])
    paths += write_images(tmp_path / "jpeg", mode, [(17, 13)], ext=".jpg")
    trained = read_images(paths, image_size=12)
    assert trained.shape[1] == channels
    preprocessing = Preprocessing(channels, 12, 12, RESIZE_PILLOW)
    for index, path in enumerate(paths):
        assert torch.equal(preprocessing.load(path), trained[index]), path


def test_a_whole_folder_dataset_is_read_the_same(tmp_path: Path) -> None:
    """Through the loader itself: every training, validation and test image of a folder
    dataset equals predict's reading of its file."""
    for name in ("a", "b"):
        write_images(tmp_path / name, "RGB", [(14, 10)] * 4, seed=ord(name))
    dataset = load_image_folder(tmp_path, image_size=8, val_fraction=0.25, test_fraction=0.25)
    preprocessing = Preprocessing(3, 8, 8, RESIZE_PILLOW)
    read = torch.stack([preprocessing.load(p) for p in sorted(tmp_path.glob("*/*.png"))])
    splits = [dataset.train_images, dataset.val_images, dataset.test_images]
    for images in splits:
        for image in images:
            assert any(torch.equal(image, candidate) for candidate in read)
    assert sum(len(images) for images in splits) == len(read) == 8


def test_a_tensor_models_images_match_its_resized_training_images(tmp_path: Path) -> None:
    """An IDX/CIFAR model trained at ``image_size: 32`` resized its 28x28 images with torch's
    antialiased filter: the same image as a 28x28 PNG is resized the same way."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 1, 28, 28), generator=generator, dtype=torch.uint8)
    trained = resize_images(images, 32)
    preprocessing = Preprocessing(1, 32, 32, resize_filter("fashion-mnist"))
    native = Preprocessing(1, 28, 28, resize_filter("mnist"))
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.fromarray(images[index, 0].numpy()).save(path)
        assert torch.equal(preprocessing.load(path), trained[index])
        assert torch.equal(native.load(path), images[index])  # no resize at the model's size
    colour = Image.fromarray(images[0, 0].numpy()).convert("RGB")
    colour.save(tmp_path / "colour.png")
    assert torch.equal(native.load(tmp_path / "colour.png"), images[0])  # L of grey RGB


def test_modes_a_folder_of_photos_may_hold(tmp_path: Path) -> None:
    """Palette, RGBA and 16-bit grey images become the model's channels as training read
    them (alpha dropped; 16 bits scaled, not clipped)."""
    Image.new("P", (6, 6), 0).save(tmp_path / "p.gif")
    Image.new("RGBA", (6, 6), (1, 2, 3, 4)).save(tmp_path / "a.png")
    wide = np.full((6, 6), 65535, dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    rgb = Preprocessing(3, 6, 6, RESIZE_PILLOW)
    grey = Preprocessing(1, 6, 6, RESIZE_PILLOW)
    assert rgb.load(tmp_path / "a.png")[:, 0, 0].tolist() == [1, 2, 3]
    assert grey.load(tmp_path / "w.png").unique().tolist() == [255]
    paths = [tmp_path / "p.gif", tmp_path / "a.png", tmp_path / "w.png"]
    trained = read_images(paths)
    for index, path in enumerate(paths):
        assert torch.equal(rgb.load(path), trained[index])


def test_a_non_square_model_resizes_with_torch_too(tmp_path: Path) -> None:
    write_images(tmp_path, "L", [(30, 30)])
    assert Preprocessing(1, 6, 10, RESIZE_TORCH).load(tmp_path / "0.png").shape == (1, 6, 10)


def test_refusals_are_one_line(tmp_path: Path) -> None:
    preprocessing = Preprocessing(1, 28, 28, RESIZE_TORCH)
    assert preprocessing.min_size == (7, 7)
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    Image.new("L", (6, 40)).save(tmp_path / "thin.png")
    Image.new("L", (7, 7)).save(tmp_path / "small.png")
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "cut.png").write_bytes((tmp_path / "thin.png").read_bytes()[:40])
    assert preprocessing.load(tmp_path / "small.png").shape == (1, 28, 28)
    for name, message in (("dot.png", "is 1x1 pixels: too small"),
                          ("thin.png", "is 6x40 pixels: too small"),
                          ("text.png", "cannot read image"),
                          ("cut.png", "image"),
                          ("missing.png", "cannot read image")):
        with pytest.raises(UserError, match=message) as caught:
            preprocessing.load(tmp_path / name)
        assert "\n" not in str(caught.value)


def test_the_record_reads_back() -> None:
    preprocessing = Preprocessing(3, 8, 10, RESIZE_PILLOW, (0.1, 0.2, 0.3), (1.0, 0.5, 0.25))
    values = preprocessing.to_dict()
    assert values["scale"] == "p / 255 - 0.5" and values["color"] == "RGB"
    assert Preprocessing.from_dict(values, "m.json") == preprocessing
    with pytest.raises(UserError, match="m.json: 'preprocessing'"):
        Preprocessing.from_dict({"size": "big"}, "m.json")
