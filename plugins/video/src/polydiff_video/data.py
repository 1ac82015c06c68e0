"""Seeded procedural clips: one coloured shape on black doing one thing for ``FRAMES`` frames.

What it does is one of ``MOTIONS``: sliding left/right/up/down at 0.75-3 px per frame and
bouncing off the walls (never before frame 2, so the caption's direction is the opening
one), growing, shrinking, or turning from its colour to another. A clip's future therefore
is not its last frame, nor, after a bounce, a constant-velocity extrapolation.

Every clip is drawn by one vectorised rasteriser: the shape's centre, half-width and colour
are per-frame arrays, and all frames are covered in one broadcast over a supersampled grid.
"""
from __future__ import annotations

import numpy as np

FRAMES = 8   # frames per training clip: the model's window
SIZE = 32    # frame height and width in pixels
FPS = 8      # default playback rate of written clips

PALETTE = {  # name -> RGB in [0, 1]
    "red": (0.95, 0.12, 0.1), "green": (0.12, 0.78, 0.15), "blue": (0.15, 0.3, 1.0),
    "yellow": (0.97, 0.95, 0.12), "purple": (0.62, 0.15, 0.85), "cyan": (0.1, 0.88, 0.92),
    "white": (1.0, 1.0, 1.0), "orange": (1.0, 0.55, 0.08),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy)
MOTIONS = (*DIRECTIONS, "grow", "shrink", "turn")
PHRASES = {"right": "moving to the right", "left": "moving to the left", "up": "moving up",
           "down": "moving down", "grow": "growing", "shrink": "shrinking"}
SPEED = (0.75, 3.0)   # px per frame, sliding clips
RADIUS = (3.0, 6.0)   # half-width, sliding and turning clips
RATE = (0.3, 0.6)     # px per frame of radius change, growing and shrinking clips
OVERSAMPLE = 3


def describe(colour=None, shape=None, motion=None, target=None) -> str:
    """The caption "a red circle moving to the right"; a left-out part is left out of the
    text ("a shape growing", "a blue square"); ``target`` is the colour a turning clip ends in."""
    noun = " ".join(w for w in (colour, shape or "shape") if w)
    text = ("an " if noun[0] in "aeiou" else "a ") + noun
    if motion == "turn":
        return f"{text} turning {target}"
    return f"{text} {PHRASES[motion]}" if motion else text


def rasterise(shape: str, cx, cy, r, rgb) -> np.ndarray:
    """Frames [T, 3, SIZE, SIZE] float32 in [0, 1] of ``shape`` with per-frame centre
    ``(cx, cy)``, half-width ``r`` (arrays of T) and colour ``rgb`` ([T, 3]); anti-aliased by
    averaging an OVERSAMPLE x OVERSAMPLE grid of points in every pixel."""
    cx, cy, r = (np.asarray(v, np.float64)[:, None, None] for v in (cx, cy, r))
    pts = (np.arange(SIZE * OVERSAMPLE) + 0.5) / OVERSAMPLE
    dx, dy = pts[None, None, :] - cx, pts[None, :, None] - cy
    if shape == "circle":
        inside = np.hypot(dx, dy) <= r
    elif shape == "square":
        inside = np.maximum(np.abs(dx), np.abs(dy)) <= 0.9 * r
    elif shape == "triangle":  # apex up; the centre is the centroid, height 1.8 r
        rel = dy + 1.2 * r  # distance below the apex
        inside = (rel >= 0) & (rel <= 1.8 * r) & (np.abs(dx) <= rel / np.sqrt(3))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    frames = len(inside)
    cover = inside.reshape(frames, SIZE, OVERSAMPLE, SIZE, OVERSAMPLE).mean(axis=(2, 4))
    rgb = np.asarray(rgb, np.float64).reshape(frames, 3, 1, 1)
    return (rgb * cover[:, None]).astype(np.float32)


def bounce(start, velocity, lo, hi, frames: int) -> np.ndarray:
    """Positions start + velocity * k, k < frames, reflected off the walls lo and hi."""
    span = hi - lo
    u = np.mod(start - lo + velocity * np.arange(frames), 2 * span)
    return lo + span - np.abs(span - u)


def trajectory(rng: np.random.Generator, motion: str, frames: int = FRAMES) -> dict:
    """Per-frame centre, half-width and colour weights of a clip doing ``motion``: arrays
    ``cx, cy, r`` of length ``frames`` and ``mix`` (0 = start colour, 1 = target colour)."""
    k = np.arange(frames, dtype=np.float64)
    mix = np.zeros(frames)
    if motion in DIRECTIONS:
        r = rng.uniform(*RADIUS)
        lo, hi = r + 0.5, SIZE - r - 0.5
        speed = rng.uniform(*SPEED)
        ux, uy = DIRECTIONS[motion]
        # along the motion: room for two steps before any bounce
        along = rng.uniform(lo, hi - 2 * speed) if (ux + uy) > 0 else rng.uniform(lo + 2 * speed, hi)
        across = rng.uniform(lo, hi)
        track = bounce(along, speed * (ux + uy), lo, hi, frames)
        cx, cy = (track, np.full(frames, across)) if ux else (np.full(frames, across), track)
        r = np.full(frames, r)
    elif motion in ("grow", "shrink"):
        rate = rng.uniform(*RATE)
        r0 = rng.uniform(2.0, 3.5) if motion == "grow" else rng.uniform(2.0, 3.5) + rate * (frames - 1)
        r = r0 + (rate if motion == "grow" else -rate) * k
        room = r.max() + 0.5
        cx, cy = (np.full(frames, rng.uniform(room, SIZE - room)) for _ in range(2))
    elif motion == "turn":
        r = np.full(frames, rng.uniform(*RADIUS))
        cx, cy = (np.full(frames, rng.uniform(r[0] + 0.5, SIZE - r[0] - 0.5)) for _ in range(2))
        mix = k / (frames - 1)
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return {"cx": cx, "cy": cy, "r": r, "mix": mix}


def clip(colour: str, shape: str, motion: str, rng: np.random.Generator, target: str | None = None,
         frames: int = FRAMES) -> tuple[np.ndarray, dict]:
    """One clip [frames, 3, SIZE, SIZE] in [0, 1] and its facts (the attributes and the track)."""
    if motion == "turn" and target is None:
        target = str(rng.choice([c for c in PALETTE if c != colour]))
    path = trajectory(rng, motion, frames)
    start = np.asarray(PALETTE[colour])
    end = np.asarray(PALETTE[target]) if motion == "turn" else start
    rgb = (1 - path["mix"])[:, None] * start + path["mix"][:, None] * end
    video = rasterise(shape, path["cx"], path["cy"], path["r"], rgb)
    facts = {"colour": colour, "shape": shape, "motion": motion, "target": target,
             "cx": path["cx"].tolist(), "cy": path["cy"].tolist(), "r": path["r"].tolist()}
    return video, facts


def random_facts(rng: np.random.Generator) -> dict:
    colour = str(rng.choice(list(PALETTE)))
    motion = str(rng.choice(MOTIONS))
    target = str(rng.choice([c for c in PALETTE if c != colour])) if motion == "turn" else None
    return {"colour": colour, "shape": str(rng.choice(SHAPES)), "motion": motion, "target": target}


def sample(rng: np.random.Generator, leave_out: float = 0.15, blank: float = 0.1) -> tuple[np.ndarray, str, dict]:
    """(clip, caption, facts): each of colour, shape and motion is left out of the caption with
    probability ``leave_out``, and the whole caption is "" with probability ``blank`` (the
    null prompt, so the model learns the unguided branch that guidance needs)."""
    facts = random_facts(rng)
    video, full = clip(facts["colour"], facts["shape"], facts["motion"], rng, facts["target"])
    if rng.random() < blank:
        return video, "", full
    said = {k: facts[k] if rng.random() >= leave_out else None for k in ("colour", "shape", "motion")}
    return video, describe(**said, target=facts["target"]), full


def batch(n: int, seed: int, leave_out: float = 0.15, blank: float = 0.1) -> tuple[np.ndarray, list[str], list[dict]]:
    """n clips from one seed: [n, FRAMES, 3, SIZE, SIZE] in [0, 1], captions, facts."""
    rng = np.random.default_rng(seed)
    items = [sample(rng, leave_out, blank) for _ in range(n)]
    return np.stack([v for v, _, _ in items]), [c for _, c, _ in items], [f for _, _, f in items]


def captions() -> list[str]:
    """Every caption ``sample`` can write, "" included."""
    motions = [(m, None) for m in (None, *PHRASES)] + [("turn", c) for c in PALETTE]
    return sorted({""} | {describe(c, s, m, t) for c in (None, *PALETTE) for s in (None, *SHAPES)
                          for m, t in motions})
