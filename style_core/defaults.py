"""Every mode's defaults in one table, and each device's sizes and iteration counts beside them.

A mode's defaults are the settings fields' own (settings.py, large.py, photo.py, video.py) changed by
its row of MODE_DEFAULTS; a front end that runs on a device (the studio) changes them again by the
device's row of DEVICE_DEFAULTS, and by nothing else. Entries are settings by name: a mode's own
field or one of its image settings (large mode's `size` is the output's, its `iterations` the global
pass's). Nothing else in the project restates a default.
"""

from __future__ import annotations

MODES = ("image", "large", "photo", "video", "explore")

MODE_DEFAULTS: dict[str, dict] = {
    "image": {},
    "large": {},
    # the research deck's photo schedule (Adam, content init, one scale); its strengths are rules of
    # their own (photo.PHOTO_STYLE_WEIGHT, PHOTO_ADAM_LR): measured on a trained VGG16 (bench/LOG.md 22).
    # With L-BFGS, L-BFGS-B's pairs: the matting term's coupling misleads the proposed ones (LOG 29)
    "photo": dict(iterations=500, optimizer="adam", content_weight=1.0, tv_weight=1.0, init="content", scales=1,
                  bounds="lbfgs-b"),
    # smaller frames, early stopping (later frames start from the warped previous one), short calls so
    # that a frame's end is seen soon, and the classic scripts' unclipped L-BFGS (bench/LOG.md 13)
    "video": dict(size=256, iterations=300, optimizer="lbfgs", tol=1e-3, steps_per_call=5, scales=1, bounds="none"),
    # the deck's study settings (content init, Adam 1e-2, content 1) with image mode's normalisation
    # and style weight (the deck's 1e5 was for random-valued "paper" terms)
    "explore": dict(size=128, iterations=100, optimizer="adam", lr=1e-2, content_weight=1.0, init="content",
                    preview_every=10 ** 9),
}

# What finishes in about a minute (Image) or a few minutes (the other tabs) on each device: a 2-core
# CPU gets small sizes, a GPU the classic 512 px ones (bench/results/tabs-cpu.json).
DEVICE_DEFAULTS: dict[str, dict[str, dict]] = {
    "cpu": {
        "image": dict(size=192, iterations=100),
        "large": dict(size=1024, tile=256, overlap=32, iterations=60, tile_iterations=40, base_size=256),
        "photo": dict(size=192, iterations=150),
        "video": dict(size=128, max_frames=12, iterations=100, frame_iterations=100),
        "explore": dict(size=96, iterations=40),
    },
    "gpu": {
        "image": dict(size=512, iterations=200),
        "large": dict(size=2048, tile=512, overlap=64, iterations=200, tile_iterations=100, base_size=512),
        "photo": dict(size=512),   # the mode's own iterations
        "video": dict(max_frames=48),   # the mode's own size and iterations
        "explore": dict(size=128, iterations=60),
    },
}


def device_kind(backend: str) -> str:
    """A JAX backend's row of DEVICE_DEFAULTS: "cpu", or "gpu" for any accelerator."""
    return "cpu" if backend == "cpu" else "gpu"


def mode_defaults(mode: str, device: str | None = None) -> dict:
    """The settings `mode` changes from the fields' defaults, by name, and those of `device` (a JAX
    backend: cpu, gpu, tpu) where given."""
    return {**MODE_DEFAULTS[mode], **(DEVICE_DEFAULTS[device_kind(device)][mode] if device else {})}
