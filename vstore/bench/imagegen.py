"""Generators of small images and datasets for tests, benchmarks and the docs' measurements: COCO layouts,
class folders, captioned shapes, every kind of awkward or broken file. Deterministic for a given seed.

    python -c "from pathlib import Path; from vstore.bench.imagegen import make_coco; make_coco(Path('coco'))"
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [
    ("red", (220, 30, 30)),
    ("green", (30, 180, 60)),
    ("blue", (30, 60, 220)),
    ("yellow", (240, 220, 40)),
    ("purple", (140, 50, 170)),
    ("orange", (250, 140, 20)),
    ("cyan", (40, 200, 220)),
    ("pink", (240, 120, 180)),
    ("brown", (120, 80, 40)),
    ("grey", (128, 128, 128)),
    ("black", (15, 15, 15)),
    ("white", (245, 245, 245)),
]
SHAPES = ("circle", "square", "triangle")


def draw(index: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    """A distinct picture per index: a coloured shape on a contrasting background, plus a little noise."""
    name, colour = COLOURS[index % len(COLOURS)]
    shape = SHAPES[(index // len(COLOURS)) % len(SHAPES)]
    width, height = size
    background = tuple(255 - c for c in colour)
    image = Image.new("RGB", size, background)
    pen = ImageDraw.Draw(image)
    box = (width // 5, height // 5, width * 4 // 5, height * 4 // 5)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        pen.polygon([(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=colour)
    rng = np.random.default_rng(seed * 100_003 + index)
    noise = rng.integers(-6, 7, size=(height, width, 3))
    array = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def describe(index: int) -> tuple[str, str]:
    return COLOURS[index % len(COLOURS)][0], SHAPES[(index // len(COLOURS)) % len(SHAPES)]


def save_jpeg(path: Path, index: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    draw(index, size, seed).save(path, "JPEG", quality=85)
    return path


def captions_for(index: int, count: int) -> list[str]:
    colour, shape = describe(index)
    phrases = [
        f"a {colour} {shape}",
        f"a {shape} that is {colour}",
        f"{colour} {shape} on a plain background",
        f"picture of a {colour} {shape}",
        f"the colour {colour} in the shape of a {shape}",
    ]
    return phrases[:count]


def make_coco(
    root: Path,
    split: str = "val2017",
    n: int = 6,
    *,
    uncaptioned: int = 0,
    missing: int = 0,
    unknown_image_captions: int = 0,
    empty_captions: int = 0,
    first_id: int = 100,
    size: tuple[int, int] = (64, 48),
) -> dict:
    """A COCO captions layout: root/<split>/*.jpg + root/annotations/captions_<split>.json.

    Image i gets 1 + i % 5 captions. `uncaptioned` extra files on disk are not in the JSON; `missing`
    JSON entries (with captions) have no file; `unknown_image_captions` captions name no listed image."""
    images, annotations = [], []
    ann_id = 1
    for i in range(n + missing):
        image_id = first_id + i
        name = f"{image_id:012d}.jpg"
        images.append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        if i < n:
            save_jpeg(root / split / name, i, size)
        for text in captions_for(i, 1 + i % 5):
            annotations.append({"id": ann_id, "image_id": image_id, "caption": text})
            ann_id += 1
    for j in range(uncaptioned):
        save_jpeg(root / split / f"extra_{j:03d}.jpg", n + missing + j, size)
    for _ in range(unknown_image_captions):
        annotations.append({"id": ann_id, "image_id": 999_999_999, "caption": "nobody's picture"})
        ann_id += 1
    for _ in range(empty_captions):
        annotations.append({"id": ann_id, "image_id": first_id, "caption": "   "})
        ann_id += 1
    data = {"info": {"description": "generated"}, "images": images, "annotations": annotations}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"captions_{split}.json").write_text(json.dumps(data))
    return data


def make_odd_images(folder: Path) -> dict[str, str]:
    """Valid but awkward files: every one must be ingested. Returns {name: what is odd about it}."""
    folder.mkdir(parents=True, exist_ok=True)
    base = draw(3, (40, 30))
    made = {}
    base.convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    made["cmyk.jpg"] = "CMYK JPEG"
    base.convert("L").save(folder / "grey.png")
    made["grey.png"] = "greyscale"
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(folder / "palette.png", transparency=0)
    made["palette.png"] = "palette with transparency"
    Image.fromarray(np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).save(folder / "deep.png")
    made["deep.png"] = "16-bit greyscale"
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    made["alpha.png"] = "RGBA"
    frames = [draw(i, (40, 30)).convert("P") for i in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    made["anim.gif"] = "animated gif"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    base.save(folder / "rotated.jpg", "JPEG", exif=exif)
    made["rotated.jpg"] = "EXIF orientation 6"
    base.save(folder / "plain.bmp")
    made["plain.bmp"] = "BMP"
    base.save(folder / "plain.tiff")
    made["plain.tiff"] = "TIFF"
    base.save(folder / "plain.webp")
    made["plain.webp"] = "WebP"
    return made


def make_bad_images(folder: Path) -> dict[str, str]:
    """Broken files: every one must become a 'failed' row. Returns {name: what is wrong}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "_good.jpg"
    save_jpeg(good, 5, (64, 48))
    data = good.read_bytes()
    good.unlink()
    made = {}
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    made["truncated.jpg"] = "truncated JPEG"
    (folder / "zero.jpg").write_bytes(b"")
    made["zero.jpg"] = "zero bytes"
    (folder / "notes.png").write_text("this is not a picture\n")
    made["notes.png"] = "text file named .png"
    rng = random.Random(7)
    (folder / "corrupt.jpg").write_bytes(data[:20] + bytes(rng.randrange(256) for _ in range(400)))
    made["corrupt.jpg"] = "JPEG header followed by garbage"
    os.symlink(folder / "nowhere.jpg", folder / "dangling.jpg")
    made["dangling.jpg"] = "unreadable (dangling symlink)"
    return made


def make_non_utf8_name(folder: Path, index: int = 1) -> bytes:
    """An image whose file name is not valid UTF-8 (Latin-1 'café.jpg'); returns the raw name."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = b"caf\xe9.jpg"
    path = os.path.join(os.fsencode(folder), raw)
    draw(index).save(os.fsdecode(path), "JPEG")
    return raw


def make_class_folders(root: Path, classes: dict[str, int]) -> None:
    """ImageNet-style class folders: root/<class>/<n>.jpg."""
    index = 0
    for label, count in classes.items():
        for k in range(count):
            save_jpeg(root / label / f"{k:04d}.jpg", index)
            index += 1


def make_many(root: Path, n: int, size: tuple[int, int] = (640, 480), per_folder: int = 1000) -> None:
    """n JPEGs (COCO-like size by default) in folders of `per_folder`, for benchmarks."""
    for i in range(n):
        save_jpeg(root / f"{i // per_folder:04d}" / f"{i:07d}.jpg", i, size, seed=i // len(COLOURS))


POSITIONS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75)}


def draw_scene(colour: str, shape: str, position: str, size: int = 64, seed: int = 0) -> Image.Image:
    """One shape of a named colour at a named position on a light background, jittered by the seed
    (place, size, background shade, noise), so images that share a description still differ."""
    rng = np.random.default_rng(seed)
    shade = int(rng.integers(200, 246))
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    pen = ImageDraw.Draw(image)
    fx, fy = POSITIONS[position]
    cx = fx * size + rng.uniform(-0.06, 0.06) * size
    cy = fy * size + rng.uniform(-0.06, 0.06) * size
    r = size * rng.uniform(0.14, 0.2)
    fill = dict(COLOURS)[colour]
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(cx - r, cy + r), (cx, cy - r), (cx + r, cy + r)], fill=fill)
    noise = rng.integers(-8, 9, size=(size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8), "RGB")


def make_captioned_shapes(
    root: Path,
    n: int,
    *,
    seed: int = 0,
    colours: int = 6,
    size: int = 64,
    splits: dict[str, int] | None = None,
) -> list[tuple[str, str, str]]:
    """n images of a coloured shape at a position, each with a same-stem .txt of captions that describe
    exactly what is drawn (colour, shape, position), for fine-tuning tests and the docs' measurements.
    `splits` ({"train": 300, "val": 60}) puts images in top-level split folders instead. Returns the
    (colour, shape, position) of each image, in order."""
    names = [name for name, _ in COLOURS[:colours] if name != "white"]
    rng = np.random.default_rng(seed)
    folders = [s for s, count in (splits or {"": n}).items() for _ in range(count)]
    made = []
    for i, split in enumerate(folders):
        colour = names[int(rng.integers(len(names)))]
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        position = list(POSITIONS)[int(rng.integers(len(POSITIONS)))]
        path = root / split / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_scene(colour, shape, position, size, seed=seed * 1_000_003 + i).save(path)
        path.with_suffix(".txt").write_text(
            f"a {colour} {shape} on the {position}\n"
            f"{colour} {shape}, {position} side\n"
            f"a picture of a {shape} that is {colour}, at the {position}\n",
            encoding="utf-8",
        )
        made.append((colour, shape, position))
    return made


def make_planted_duplicates(root: Path, n: int, *, planted: int, size: int = 160) -> list[tuple[str, str]]:
    """n distinct photos-like images (a shape of a colour at a place, different for every index) and, for
    the first `planted` of them, three near-duplicates each: resized to 60 %, re-encoded at JPEG quality 50,
    and cropped by 5 % of each side. Returns the planted (original, variant) pairs as relative paths."""
    root.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in COLOURS]
    places = list(POSITIONS)
    pairs = []
    for i in range(n):
        colour = names[i % len(names)]
        shape = SHAPES[(i // len(names)) % len(SHAPES)]
        position = places[(i // (len(names) * len(SHAPES))) % len(places)]
        image = draw_scene(colour, shape, position, size, seed=i)
        original = f"{i:04d}.png"
        image.save(root / original)
        if i >= planted:
            continue
        w, h = image.size
        variants = {
            f"{i:04d}_small.png": image.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.LANCZOS),
            f"{i:04d}_q50.jpg": image,
            f"{i:04d}_crop.png": image.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        }
        for name, variant in variants.items():
            if name.endswith(".jpg"):
                variant.save(root / name, "JPEG", quality=50)
            else:
                variant.save(root / name)
            pairs.append((original, name))
    return pairs
