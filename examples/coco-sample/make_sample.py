"""Regenerate this COCO-format sample: 10 small JPEGs in val2017/ (one distinct colour and shape each)
and annotations/captions_val2017.json with 1-5 captions per image. Deterministic; run from anywhere:

    python examples/coco-sample/make_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SPLIT = "val2017"
SIZE = (160, 120)

# (colour name, RGB, shape, background name, background RGB, captions)
PICTURES = [
    (
        "red",
        (215, 35, 35),
        "circle",
        "white",
        (245, 245, 245),
        ["a red circle on a white background", "a red ball", "a round red shape"],
    ),
    (
        "blue",
        (35, 70, 210),
        "square",
        "yellow",
        (245, 225, 60),
        ["a blue square on a yellow background", "a blue box"],
    ),
    (
        "green",
        (40, 170, 70),
        "triangle",
        "black",
        (20, 20, 20),
        ["a green triangle on black", "a green arrow pointing up", "a green pyramid shape", "a triangle"],
    ),
    (
        "yellow",
        (245, 215, 40),
        "circle",
        "blue",
        (30, 50, 160),
        ["a yellow sun in a blue sky", "a yellow circle on blue"],
    ),
    ("orange", (250, 140, 20), "square", "grey", (128, 128, 128), ["an orange square on a grey background"]),
    (
        "purple",
        (130, 50, 170),
        "triangle",
        "white",
        (245, 245, 245),
        [
            "a purple triangle on white",
            "a violet triangle",
            "purple shape with three corners",
            "a triangle drawn in purple",
            "a purple warning sign",
        ],
    ),
    (
        "black",
        (15, 15, 15),
        "circle",
        "white",
        (245, 245, 245),
        ["a black dot on white paper", "a black circle"],
    ),
    (
        "white",
        (250, 250, 250),
        "square",
        "red",
        (200, 30, 30),
        ["a white square on a red background", "a white box on red", "a flag, red with a white square"],
    ),
    (
        "pink",
        (240, 120, 180),
        "circle",
        "green",
        (30, 130, 60),
        ["a pink circle on green grass", "a pink flower seen from above"],
    ),
    (
        "cyan",
        (40, 200, 220),
        "stripes",
        "white",
        (245, 245, 245),
        ["cyan horizontal stripes on white", "a striped cyan and white pattern", "stripes"],
    ),
]


def draw(colour: tuple[int, int, int], shape: str, background: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", SIZE, background)
    pen = ImageDraw.Draw(image)
    w, h = SIZE
    box = (w // 4, h // 6, w * 3 // 4, h * 5 // 6)
    if shape == "circle":
        side = min(box[2] - box[0], box[3] - box[1])
        cx, cy = w // 2, h // 2
        pen.ellipse((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2), fill=colour)
    elif shape == "square":
        side = min(box[2] - box[0], box[3] - box[1])
        cx, cy = w // 2, h // 2
        pen.rectangle((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2), fill=colour)
    elif shape == "triangle":
        pen.polygon([(box[0], box[3]), (w // 2, box[1]), (box[2], box[3])], fill=colour)
    else:
        for y in range(0, h, 20):
            pen.rectangle((0, y, w, y + 9), fill=colour)
    return image


def main() -> None:
    images, annotations = [], []
    annotation_id = 1
    (HERE / SPLIT).mkdir(exist_ok=True)
    (HERE / "annotations").mkdir(exist_ok=True)
    for number, (_, colour, shape, _, background, captions) in enumerate(PICTURES, start=1):
        image_id = 1000 + number
        file_name = f"{image_id:012d}.jpg"
        draw(colour, shape, background).save(HERE / SPLIT / file_name, "JPEG", quality=90)
        images.append({"id": image_id, "file_name": file_name, "width": SIZE[0], "height": SIZE[1]})
        for caption in captions:
            annotations.append({"id": annotation_id, "image_id": image_id, "caption": caption})
            annotation_id += 1
    data = {
        "info": {"description": "vstore sample: generated shapes in COCO captions format", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
    }
    (HERE / "annotations" / f"captions_{SPLIT}.json").write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
