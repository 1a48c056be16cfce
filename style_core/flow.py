"""Optical flow between video frames (OpenCV's DIS), warping, and Ruder et al.'s occlusion mask.

Convention: `flow = optical_flow(a, b)` maps frame a to frame b, a(p) ~ b(p + flow(p)); so
`warp(b, optical_flow(a, b))` brings b into a's frame. The temporal loss warps the previous stylised
frame into the current one with the flow from the current input frame to the previous one.
"""

from __future__ import annotations

import numpy as np

# Ruder et al. (2016), eq. (6)-(7): forward-backward consistency and motion boundaries.
CONSISTENCY = (0.01, 0.5)
BOUNDARY = (0.01, 0.002)
# How `warp` interpolates (OpenCV's names). Bilinear blurs a texture moved by a fraction of a pixel:
# a stylised frame warped that way started the next frame with up to 6.8x its style loss (bench/LOG.md 13).
INTERPOLATION = {"linear": "INTER_LINEAR", "cubic": "INTER_CUBIC", "lanczos": "INTER_LANCZOS4"}


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2
    pixels = np.clip(np.round(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)


def optical_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flow (dx, dy) from RGB frame a to frame b, in pixels (DIS, medium preset)."""
    import cv2
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_grey(a), _grey(b), None)


def _sample_points(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """image sampled at p + flow(p) (outside the frame, the nearest edge pixel); `interpolation` one
    of INTERPOLATION: bilinear by default, as E_warp and flow fields want; "cubic" or "lanczos" keep
    a texture's fine detail (and may overshoot its range a little)."""
    import cv2
    map_x, map_y = _sample_points(flow)
    return cv2.remap(np.asarray(image, np.float32), map_x, map_y, getattr(cv2, INTERPOLATION[interpolation]),
                     borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """c in {0, 1} per pixel of the current frame: 1 where the previous frame's pixel is reliably seen.

    backward: flow current -> previous; forward: flow previous -> current. A pixel is masked out when
    the two flows disagree, |w_b + w_f(p + w_b)|^2 > 0.01 (|w_b|^2 + |w_f|^2) + 0.5 (it was occluded),
    when it sits on a motion boundary, |grad w_b|^2 > 0.01 |w_b|^2 + 0.002, or when it comes from
    outside the previous frame.
    """
    h, w = backward.shape[:2]
    forward_here = warp(forward, backward)
    total = backward + forward_here
    a, b = CONSISTENCY
    occluded = np.sum(total ** 2, -1) > a * (np.sum(backward ** 2, -1) + np.sum(forward_here ** 2, -1)) + b
    gy_x, gx_x = np.gradient(backward[..., 0])
    gy_y, gx_y = np.gradient(backward[..., 1])
    a, b = BOUNDARY
    boundary = gx_x ** 2 + gy_x ** 2 + gx_y ** 2 + gy_y ** 2 > a * np.sum(backward ** 2, -1) + b
    map_x, map_y = _sample_points(backward)
    outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


def warping_error(frames, flows) -> float:
    """E_warp (Lai et al. 2018): the mean over t >= 1 of the masked mean squared difference between
    output frame t and output frame t-1 warped into it.

    frames: the output frames in order; flows: for each t >= 1, (backward flow t -> t-1, mask) of the
    *input* frames (or the known true motion). Iterates both lazily.
    """
    errors, previous = [], None
    flows = iter(flows)
    for frame in frames:
        frame = np.asarray(frame, np.float32)
        if previous is not None:
            backward, mask = next(flows)
            warped = warp(previous, backward)
            weight = np.sum(mask)
            errors.append(float(np.sum(mask[..., None] * (frame - warped) ** 2) / max(weight * 3, 1)))
        previous = frame
    return float(np.mean(errors)) if errors else 0.0
