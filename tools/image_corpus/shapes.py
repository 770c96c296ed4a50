# The generated compositional image set: small RGB images of 1-4 shapes of one color and size,
# drawn with Pillow (Debian python3-pil) at 4x and box-filtered down (anti-aliased edges,
# deterministic), with attribute captions from paraphrase templates. Classes are (color, shape)
# pairs; a fixed set of pairs is held out of training and is the zero-shot test, so the test class
# names ("red circle") never describe a training image or caption while each word does.
import math
import random

import numpy as np
from PIL import Image, ImageDraw

SIZE = 32     # output images are SIZE x SIZE RGB
SCALE = 4     # drawn at SCALE x SIZE, then box-filtered down
COLORS = [("red", (220, 40, 40)), ("green", (40, 170, 60)), ("blue", (50, 90, 235)),
          ("yellow", (235, 215, 40)), ("purple", (150, 60, 200)), ("orange", (245, 140, 30)),
          ("white", (240, 240, 240)), ("cyan", (40, 210, 220))]
SHAPES = ["circle", "square", "triangle", "star", "cross", "diamond"]
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
          "cross": "crosses", "diamond": "diamonds"}
# Paraphrases of shape names for captions (singular, plural).
SHAPE_WORDS = {"circle": [("circle", "circles"), ("disc", "discs"), ("round dot", "round dots")],
               "square": [("square", "squares"), ("box", "boxes")],
               "triangle": [("triangle", "triangles")],
               "star": [("star", "stars"), ("five-pointed star", "five-pointed stars")],
               "cross": [("cross", "crosses"), ("plus sign", "plus signs")],
               "diamond": [("diamond", "diamonds"), ("rhombus", "rhombuses")]}
COUNT_WORDS = {1: ["a", "one", "a single"], 2: ["two", "a pair of"], 3: ["three"], 4: ["four"]}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big"]}
# A lone shape sits at one of nine places (x, y in units of the image), named in captions.
POSITIONS = [("top left", 0.25, 0.25), ("top", 0.5, 0.25), ("top right", 0.75, 0.25),
             ("left", 0.25, 0.5), ("center", 0.5, 0.5), ("right", 0.75, 0.5),
             ("bottom left", 0.25, 0.75), ("bottom", 0.5, 0.75), ("bottom right", 0.75, 0.75)]
POSITION_PHRASES = {"top left": ["in the top left corner", "at the upper left"],
                    "top": ["at the top", "near the top edge"],
                    "top right": ["in the top right corner", "at the upper right"],
                    "left": ["on the left", "on the left side"],
                    "center": ["in the middle", "in the center"],
                    "right": ["on the right", "on the right side"],
                    "bottom left": ["in the bottom left corner", "at the lower left"],
                    "bottom": ["at the bottom", "near the bottom edge"],
                    "bottom right": ["in the bottom right corner", "at the lower right"]}
SINGLE_TEMPLATES = ["{count} {size} {color} {shape} {pos}",
                    "{pos} there is {count} {size} {color} {shape}",
                    "{count} {color} {shape}, {size}, {pos}",
                    "a picture of {count} {color} {shape} {pos} on a gray background",
                    "{count} {size} {shape} colored {color}, placed {pos}"]
MULTI_TEMPLATES = ["{count} {size} {color} {shapes}",
                   "{count} {color} {shapes} scattered on a gray background",
                   "a picture with {count} {size} {color} {shapes}",
                   "there are {count} {shapes}, all {color} and {size}",
                   "{count} {size} {shapes} in {color}"]
# The zero-shot prompts of this set (dataset.json) and of a count task that a later eval may use.
PROMPT_TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "a picture of a {}.",
                    "an image of a {}.", "a rendering of a {}.", "a sketch of a {}.",
                    "a small image of a {}.", "a low resolution image of a {}.",
                    "a {} on a gray background.", "a synthetic image of a {}.",
                    "a simple drawing of a {}.", "there is a {} in the image."]


def class_names():
    return [f"{c} {s}" for c, _ in COLORS for s in SHAPES]


def label_of(color_index, shape_index):
    return color_index * len(SHAPES) + shape_index


def heldout_pairs():
    """Color i is held out with shape i mod 6 (red circle, green square, blue triangle, yellow
    star, purple cross, orange diamond, white circle, cyan square): every color and every shape
    still appears in training with other partners. Fixed, not seeded, so test classes are the
    same for every seed."""
    return {(c, c % len(SHAPES)) for c in range(len(COLORS))}


def _shape_points(shape, cx, cy, r):
    """Polygon of a shape centred at (cx, cy) with circumradius r (pixels of the big canvas)."""
    if shape == "square":
        h = r / math.sqrt(2)
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + 0.7 * r, cy), (cx, cy + r), (cx - 0.7 * r, cy)]
    if shape == "triangle":
        return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
                for a in (-90, 30, 150)]
    if shape == "star":
        pts = []
        for i in range(10):
            rr = r if i % 2 == 0 else 0.45 * r
            a = math.radians(-90 + 36 * i)
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts
    if shape == "cross":
        t = 0.33 * r
        return [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t),
                (cx + r, cy + t), (cx + t, cy + t), (cx + t, cy + r), (cx - t, cy + r),
                (cx - t, cy + t), (cx - r, cy + t), (cx - r, cy - t), (cx - t, cy - t)]
    raise ValueError(shape)


def plan_image(rng, color_index, shape_index):
    """Attributes and object placements of one image, all drawn from rng."""
    count = rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 2])[0]
    size = rng.choice(["small", "large"]) if count <= 2 else "small"
    r_rel = rng.uniform(0.17, 0.21) if size == "large" else rng.uniform(0.09, 0.115)
    if count == 1:
        pos_name, px, py = rng.choice(POSITIONS)
        if size == "large":  # keep a large shape inside the image
            px = min(max(px, r_rel + 0.03), 1 - r_rel - 0.03)
            py = min(max(py, r_rel + 0.03), 1 - r_rel - 0.03)
        centers = [(px + rng.uniform(-0.04, 0.04), py + rng.uniform(-0.04, 0.04))]
    else:
        pos_name = ""
        centers = []
        while len(centers) < count:  # rejection sampling: no overlaps, inside the image
            cand = (rng.uniform(r_rel + 0.03, 1 - r_rel - 0.03), rng.uniform(r_rel + 0.03, 1 - r_rel - 0.03))
            if all(math.dist(cand, c) > 2.1 * r_rel for c in centers):
                centers.append(cand)
            elif rng.random() < 0.02:  # restart a crowded layout
                centers = []
    return {"color": color_index, "shape": shape_index, "count": count, "size": size,
            "position": pos_name, "centers": centers, "radius": r_rel,
            "background": rng.randint(20, 90), "rotation": rng.uniform(-15, 15),
            "jitter": [rng.randint(-15, 15) for _ in range(3)], "noise_seed": rng.getrandbits(32)}


def render(p):
    """An (SIZE, SIZE, 3) u8 image of a plan: gray background, shapes, mild pixel noise."""
    big = SIZE * SCALE
    img = Image.new("RGB", (big, big), (p["background"],) * 3)
    draw = ImageDraw.Draw(img)
    rgb = tuple(min(255, max(0, v + j)) for v, j in zip(COLORS[p["color"]][1], p["jitter"]))
    shape = SHAPES[p["shape"]]
    r = p["radius"] * big
    rot = math.radians(p["rotation"])
    for cx, cy in p["centers"]:
        cx, cy = cx * big, cy * big
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
            continue
        pts = []
        for x, y in _shape_points(shape, cx, cy, r):  # a small rotation about the centre
            dx, dy = x - cx, y - cy
            pts.append((cx + dx * math.cos(rot) - dy * math.sin(rot), cy + dx * math.sin(rot) + dy * math.cos(rot)))
        draw.polygon(pts, fill=rgb)
    small = np.asarray(img.resize((SIZE, SIZE), Image.BOX), dtype=np.int16)
    noise = np.random.default_rng(p["noise_seed"]).integers(-6, 7, size=small.shape)
    return np.clip(small + noise, 0, 255).astype(np.uint8)


def captions(rng, p, k):
    """k distinct captions of a plan from the paraphrase templates."""
    color = COLORS[p["color"]][0]
    shape = SHAPES[p["shape"]]
    out, tries = [], 0
    while len(out) < k and tries < 50:
        tries += 1
        sing, plur = rng.choice(SHAPE_WORDS[shape])
        count = rng.choice(COUNT_WORDS[p["count"]])
        size = rng.choice(SIZE_WORDS[p["size"]])
        if p["count"] == 1:
            pos = rng.choice(POSITION_PHRASES[p["position"]])
            t = rng.choice(SINGLE_TEMPLATES).format(count=count, size=size, color=color, shape=sing, pos=pos)
        else:
            t = rng.choice(MULTI_TEMPLATES).format(count=count, size=size, color=color, shapes=plur)
        t = _fix_articles(" ".join(t.split())).replace("there are a pair", "there is a pair")
        if t not in out:
            out.append(t)
    return out


def _fix_articles(t):
    """'a' before a vowel sound becomes 'an' (a orange -> an orange, a large -> a large)."""
    words = t.split(" ")
    for i in range(len(words) - 1):
        if words[i] in ("a", "an"):
            words[i] = "an" if words[i + 1][0] in "aeiou" else "a"
    return " ".join(words)


def mentions_pair(caption, color_index, shape_index):
    """True when a caption names both this color and (any paraphrase of) this shape."""
    words = " " + " ".join(caption.lower().replace(",", " ").split()) + " "
    color = COLORS[color_index][0]
    shape = SHAPES[shape_index]
    names = [w for pair in SHAPE_WORDS[shape] for w in pair]
    return f" {color} " in words and any(f" {n} " in words for n in names)


def make_split(seed, split, n, pairs):
    """n images of the split, classes cycling over `pairs` in a seeded order (balanced)."""
    rng = random.Random(f"shapes:{seed}:{split}")
    pairs = sorted(pairs)
    order = [pairs[i % len(pairs)] for i in range(n)]
    rng.shuffle(order)
    images = np.zeros((n, SIZE, SIZE, 3), dtype=np.uint8)
    rows = []
    for i, (c, s) in enumerate(order):
        p = plan_image(rng, c, s)
        images[i] = render(p)
        caps = captions(rng, p, 3)
        attrs = {"color": COLORS[c][0], "shape": SHAPES[s], "count": p["count"], "size": p["size"],
                 "position": p["position"]}
        rows.append({"label": label_of(c, s), "captions": caps, "attributes": attrs})
    return images, rows
