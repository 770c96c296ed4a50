"""Makes tests/fixtures/jpeg/: tiny JPEG files and what Pillow and torchvision make of them, read
by tests/data/jpeg_decoder_test.cpp to check data/jpeg_decoder.cpp (libjpeg-turbo decoding) and
data/image_resize.cpp (torchvision's Resize + CenterCrop on a PIL image, Pillow's antialiased
bilinear filter) byte for byte.

Files:
  <case>.jpg                    the JPEG (written by Pillow from seeded pixels)
  <case>.decoded.ppm            Image.open(jpg).convert("RGB"), as torchvision's ImageFolder loads it
  <case>.r<R>c<C>.ppm           transforms.Compose([Resize(R), CenterCrop(C)]) of that image
  cmyk.jpg                      a CMYK JPEG, which the decoder refuses
  cases.txt                     one line per check: "decode <jpg> <ppm>", "transform <jpg> <R> <C> <ppm>",
                                "error <jpg>"
PPM is binary P6 (RGB bytes, row-major), a format the test reads in a few lines.

The cases cover 4:2:0 and 4:4:4 chroma, a progressive file, a grayscale file, a portrait image,
downscaling by 1.5x and by 7.5x (a wide antialiasing filter), upscaling, a center-crop offset of
4.5 and 3.5 (Python's round() takes halves to even: 4 and 4) and Resize > CenterCrop.

Deterministic (fixed seed). Run from anywhere (needs Debian's python3-pil and python3-torchvision,
i.e. /usr/bin/python3):
    /usr/bin/python3 tools/make_jpeg_fixture.py
"""

import os
import random

from PIL import Image
from torchvision import transforms

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "jpeg")


def pixels(w, h, rng, channels):
    """Smooth gradients, a few hard edges and some noise: every filter tap matters."""
    data = []
    for y in range(h):
        for x in range(w):
            edge = 90 if (x // 5 + y // 7) % 2 else 0
            px = []
            for c in range(channels):
                v = (x * (40 + 30 * c)) // max(1, w) + (y * (150 - 40 * c)) // max(1, h) + edge
                px.append(max(0, min(255, v + rng.randint(-20, 20))))
            data.append(tuple(px) if channels > 1 else px[0])
    return data


def make(name, w, h, mode, rng, **save):
    img = Image.new(mode, (w, h))
    img.putdata(pixels(w, h, rng, len(mode)))
    path = os.path.join(OUT, name + ".jpg")
    img.save(path, "JPEG", **save)
    return name + ".jpg"


def write_ppm(path, img):
    img = img.convert("RGB")
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % img.size)
        f.write(img.tobytes())
    os.replace(tmp, path)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(23)
    lines = []
    cases = [
        # name, w, h, mode, save options, [(resize, crop)]
        ("rgb420", 47, 29, "RGB", {"quality": 85, "subsampling": 2}, [(16, 16), (20, 16)]),
        ("gray", 30, 45, "L", {"quality": 90}, [(21, 21)]),
        ("rgb444_progressive", 13, 10, "RGB", {"quality": 92, "subsampling": 0, "progressive": True}, [(24, 24)]),
        ("wide", 160, 120, "RGB", {"quality": 75}, [(16, 16)]),
    ]
    for name, w, h, mode, save, sizes in cases:
        jpg = make(name, w, h, mode, rng, **save)
        img = Image.open(os.path.join(OUT, jpg)).convert("RGB")
        if w * h <= 2000:  # the decoded image itself only for the small ones (fixture size)
            write_ppm(os.path.join(OUT, name + ".decoded.ppm"), img)
            lines.append("decode %s %s.decoded.ppm" % (jpg, name))
        for r, c in sizes:
            out = transforms.Compose([transforms.Resize(r), transforms.CenterCrop(c)])(img)
            ppm = "%s.r%dc%d.ppm" % (name, r, c)
            write_ppm(os.path.join(OUT, ppm), out)
            lines.append("transform %s %d %d %s" % (jpg, r, c, ppm))
    cmyk = Image.new("CMYK", (8, 8), (10, 200, 30, 5))
    cmyk.save(os.path.join(OUT, "cmyk.jpg"), "JPEG", quality=90)
    lines.append("error cmyk.jpg")
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", OUT, len(lines), "checks")


if __name__ == "__main__":
    main()
