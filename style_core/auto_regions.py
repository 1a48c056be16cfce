"""Regions found and paired automatically: Luan et al.'s semantic pairing (sky to sky) without
hand-drawn label images.

Each image's pixels are described, on a grid at the stride of the last of `AUTO_LAYERS` (1/8 of the
image for VGG's relu4_1), by

    d(p) = [w_f * PCA(sqrt F_l1(p), sqrt F_l2(p)),  w_c * colour(p),  w_p * position(p)]

F: the trained network's features, deep enough to name what a pixel shows (relu3_1 average-pooled to
relu4_1's grid, and relu4_1), square-rooted and each layer divided by its own spread; PCA: one basis
made from the content's and the styles' features together, so that the images are described in the same
terms; colour in YIQ; position (y, x) over the image's longest side. Each block is scaled to unit
variance per pixel before its weight. The pixels of each image are clustered (the content into K
regions, each style image into K + STYLE_EXTRA, below) by k-means (k-means++ starts, `RESTARTS` of
them, seeded: the same inputs and seed give the same regions), and every pixel of the image at `size`
px is given to the cluster whose centre is nearest its own descriptor (the features upsampled
bilinearly, its own colour and position), each cluster's distance map blurred over a few pixels first,
so that regions follow the image's edges without specks.

K, when not given, is the one of 2..MAX_AUTO_K with the highest mean silhouette (Rousseeuw 1987:
s = (b - a) / max(a, b), a a point's mean distance to its own cluster, b to the nearest other) over
the content and style images, on a seeded sample of grid points: the count at which the regions are
most compact and most apart.

Pairing: the content is cut into K regions and each style image into K + STYLE_EXTRA (as many as its
grid has points, K at least, for a tiny one): a style region that mixes two kinds of thing, the dark
sky and the dark ground of a night photo, splits so that each part can find its own counterpart. A
region is summarised by the mean of its feature and position blocks (what it shows and where, not its
colour: the style's sky at night is still sky, and still on top). Every style region goes to the
content region whose mean is nearest its own; a content region is painted from the style regions that
came to it (those of one style image: the one holding the nearest of them). A content region that none
came to takes the style region nearest it, when that is nearer than any of the content's own other
regions (it looks more like it than they do) and is free or taken from a content region that keeps
others (a style pixel paints one content region, as label images say), and otherwise the whole of the
style image whose mean is nearest. On the photo pairs this raised the pairing's agreement with the hand
labels from 0.17 / 0.91 / 0.78 / 0.68 (one to one, K regions each, Hungarian) to 0.48 / 0.96 / 0.90 /
0.70 (bench/LOG.md 27).

The weights, layers and the square root were chosen on the four photo pairs against their hand
segmentations (bench/bench_auto_regions.py, bench/LOG.md 26).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backbones import VGG_BLOCKS, feature_extractor, layer_table
from .color import rgb_to_yiq
from .errors import StyleError
from .images import resize, resize_longest
from .regions import MAX_REGIONS, PALETTE, Region

# The features clustered: the first ReLU of VGG's third and fourth blocks (what a pixel shows, at 1/4
# and 1/8 of the image; relu5_1's receptive field spans most of a 512 px image and blurs every edge).
AUTO_LAYERS = {"vgg": ("relu3_1", "relu4_1")}
AUTO_SIZE = 512            # regions are found at this longest side (smaller images at their own)
MAX_AUTO_K = 6             # K tried when not given: 2..MAX_AUTO_K
STYLE_EXTRA = 2            # a style image is cut into K + STYLE_EXTRA regions
PCA_DIMENSIONS = 16        # the features' principal components kept
WEIGHTS = {"features": 1.0, "colour": 0.5, "position": 0.5}   # w_f, w_c, w_p
RESTARTS = 4               # k-means runs (different k-means++ starts), the lowest inertia kept
SILHOUETTE_SAMPLE = 1500   # grid points per image that choose K
EDGE_BLUR = 1.5            # sigma, in pixels at `size`, of the distance maps' blur before the argmin


@dataclass(frozen=True)
class FoundRegions:
    """What `find_regions` found: a label map per image (int32, the image's own size; the content's
    values 0..k-1, a style image's 0..k+STYLE_EXTRA-1 at most), and for each content region the style image and
    the style regions it is painted from.

    pairs[i] = (s, (j, ...)): content region i learns from regions j of style image s; (s, None): from
    the whole of style image s (no style region resembled it). `regions()` makes them the spatial
    control the modes take."""
    content_labels: np.ndarray
    style_labels: tuple[np.ndarray, ...]
    pairs: tuple[tuple[int, tuple[int, ...] | None], ...]
    k: int

    def regions(self) -> tuple[Region, ...]:
        """One Region per content region (those that cover nothing are left out)."""
        out = []
        for i, (s, js) in enumerate(self.pairs):
            mask = (self.content_labels == i).astype(np.float32)
            if mask.any():
                style_mask = None if js is None else np.isin(self.style_labels[s], js).astype(np.float32)
                out.append(Region(mask, s, style_mask))
        return tuple(out)

    def label_images(self) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """The label maps as colour-coded RGB uint8 images, a content region and the style regions it
        is painted from in one PALETTE colour (a style region that paints nothing grey, a content
        region that takes a whole style image white): what the studio shows, and label images
        `regions.label_regions` reads back."""
        colours = np.array(list(PALETTE.values()) + _EXTRA_COLOURS, np.uint8)
        content = np.zeros(self.content_labels.shape + (3,), np.uint8)
        for i, (_, js) in enumerate(self.pairs):
            content[self.content_labels == i] = colours[i] if js is not None else (255, 255, 255)
        styles = [np.where(p[..., None] >= 0, colours[np.maximum(p, 0)], np.uint8(128)) for p in self.painted()]
        return content, tuple(styles)

    def painted(self) -> tuple[np.ndarray, ...]:
        """Each style image's pixels labelled with the content region they paint (-1: none)."""
        out = [np.full(s.shape, -1, np.int32) for s in self.style_labels]
        for i, (s, js) in enumerate(self.pairs):
            if js is not None:
                out[s][np.isin(self.style_labels[s], js)] = i
        return tuple(out)


# After PALETTE's six, distinct colours for up to MAX_REGIONS regions (none white or mid-grey).
_EXTRA_COLOURS = [(120, 70, 20), (250, 210, 60), (240, 120, 180), (0, 90, 90), (90, 90, 200), (160, 220, 120),
                  (100, 20, 60), (0, 0, 0), (200, 100, 100), (60, 60, 60)]


def auto_layers(backbone: str) -> tuple[str, ...]:
    """The layers clustered: VGG's relu3_1 and relu4_1; for a ResNet the last blocks of its second and
    third stages (the same strides, 8 and 16)."""
    if backbone in VGG_BLOCKS:
        return AUTO_LAYERS["vgg"]
    names = [info.name for info in layer_table(backbone)]
    return tuple(next(n for n in reversed(names) if n.startswith(f"block{s}_")) for s in (2, 3))


def find_regions(content: np.ndarray, styles: list[np.ndarray], weights, k: int | None = None, seed: int = 0,
                 size: int = AUTO_SIZE) -> FoundRegions:
    """Content and style images (float32 RGB in [0, 1]) segmented on `weights`' features into `k`
    regions (chosen when None; each style image into k + STYLE_EXTRA) and paired (the module's doc).
    Labels are at the images' own sizes; the work is done at `size` px (longest side) or the image's own if smaller."""
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= MAX_REGIONS):
        raise StyleError(f"the number of automatic regions must be a whole number from 2 to {MAX_REGIONS}, not {k!r}")
    if not styles:
        raise StyleError("automatic regions need at least one style image")
    images = [np.asarray(content, np.float32), *(np.asarray(s, np.float32) for s in styles)]
    small = [resize_longest(im, size) if max(im.shape[:2]) > size else im for im in images]
    grids = [_grid_features(weights, im) for im in small]
    basis = _pca_basis([g.reshape(-1, g.shape[-1]) for g in grids], seed)
    described = [_describe(im, g, basis) for im, g in zip(small, grids)]
    rng = np.random.default_rng(seed)
    points = [d.reshape(-1, d.shape[-1]) for d, _ in described]
    k = k or _choose_k(points, rng)
    # a style image too small for K + STYLE_EXTRA regions gets as many as its grid has points (K at least)
    centres = [_kmeans(p, k if n == 0 else max(k, min(k + STYLE_EXTRA, len(p))), rng)
               for n, p in enumerate(points)]
    labels = [_fine_labels(im, d, full, c) for im, (d, full), c in zip(small, described, centres)]
    labels = [_resize_labels(lab, *im.shape[:2]) for lab, im in zip(labels, images)]
    not_colour = np.r_[0:PCA_DIMENSIONS, PCA_DIMENSIONS + 3:PCA_DIMENSIONS + 5]   # features and position
    features = [d.reshape(-1, d.shape[-1])[:, not_colour] for d, _ in described]
    grid_labels = [_resize_labels(lab, *d.shape[:2]).ravel() for lab, (d, _) in zip(labels, described)]
    pairs = pair_regions(features[0], grid_labels[0], features[1:], grid_labels[1:], k)
    return FoundRegions(labels[0].astype(np.int32), tuple(lab.astype(np.int32) for lab in labels[1:]), pairs, k)


# --- descriptors ---------------------------------------------------------------------------------------

def _grid_features(weights, image: np.ndarray) -> np.ndarray:
    """The `auto_layers` features at the last one's resolution (the first average-pooled to it), square
    roots (ReLU activations are heavy-tailed: a few large values would decide every distance; on the
    photo pairs the root chose K closer to the hand segmentations' and raised the content's agreement
    with them, adjusted Rand index 0.51 to 0.66), each layer divided by its own spread (the deeper
    one's values are larger), (h, w, C1 + C2)."""
    layers = auto_layers(weights.backbone)
    side = min(image.shape[:2])
    stride = max(info.stride for info in layer_table(weights.backbone) if info.name in layers)
    if side < stride:
        raise StyleError(f"an image of {side} px is too small to find regions in: at least {stride} px")
    out = feature_extractor(weights.backbone, layers)(weights.variables, image[None])
    h, w = out[layers[-1]].shape[1:3]
    maps = []
    for name in layers:
        f = np.asarray(out[name][0], np.float32)
        f = _pool_to(np.sqrt(np.maximum(f, 0)), h, w)
        maps.append(f / max(float(f.std()), 1e-12))
    return np.concatenate(maps, -1)


def _pool_to(f: np.ndarray, h: int, w: int) -> np.ndarray:
    """Features average-pooled to (h, w) (a whole multiple of it, up to a last odd row or column)."""
    sy, sx = f.shape[0] // h, f.shape[1] // w
    return f[:h * sy, :w * sx].reshape(h, sy, w, sx, -1).mean((1, 3))


def _pca_basis(features: list[np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components (C, PCA_DIMENSIONS)) of the images' features together, each image weighing
    alike (a seeded sample of the same number of points from each)."""
    rng = np.random.default_rng(seed)
    n = min(min(len(f) for f in features), 4000)
    sample = np.concatenate([f[np.sort(rng.choice(len(f), n, replace=False))] for f in features]).astype(np.float64)
    mean = sample.mean(0)
    centred = sample - mean
    components = _leading_eigenvectors(centred.T @ centred, PCA_DIMENSIONS, rng)
    components *= np.sign(components[np.abs(components).argmax(0), range(components.shape[1])])  # a fixed sign
    return mean, components


def _leading_eigenvectors(c: np.ndarray, n: int, rng: np.random.Generator, rounds: int = 6) -> np.ndarray:
    """The `n` leading eigenvectors of a symmetric PSD matrix (C, C), as columns: subspace iteration
    on 2n seeded random vectors (Halko et al. 2011), then the small problem solved exactly. A full
    eigh of C = 768 takes 2 s on this CPU; this, milliseconds."""
    q = np.linalg.qr(c @ rng.standard_normal((c.shape[0], min(2 * n, c.shape[0]))))[0]
    for _ in range(rounds):
        q = np.linalg.qr(c @ q)[0]
    values, vectors = np.linalg.eigh(q.T @ c @ q)
    return (q @ vectors[:, np.argsort(values)[::-1][:n]])


def _describe(image: np.ndarray, grid: np.ndarray, basis) -> tuple[np.ndarray, np.ndarray]:
    """(descriptors on the grid, descriptors at the image's every pixel): PCA features, colour and
    position, each block scaled to unit variance per pixel (on the grid) and weighted."""
    mean, components = basis
    h, w = grid.shape[:2]
    f = ((grid.reshape(-1, grid.shape[-1]) - mean) @ components).reshape(h, w, -1).astype(np.float32)
    blocks = {"features": (f, _upsample(f, *image.shape[:2])),
              "colour": (rgb_to_yiq(resize(image, h, w)), rgb_to_yiq(image)),
              "position": (_positions(h, w), _positions(*image.shape[:2]))}
    coarse, fine = [], []
    for name, (g, full) in blocks.items():
        scale = WEIGHTS[name] / max(float(np.sqrt(g.reshape(-1, g.shape[-1]).var(0).sum())), 1e-12)
        coarse.append(g * scale)
        fine.append(full * scale)
    return np.concatenate(coarse, -1).astype(np.float32), np.concatenate(fine, -1).astype(np.float32)


def _positions(h: int, w: int) -> np.ndarray:
    """(y, x) of each pixel's centre over the longest side, (h, w, 2)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([(y + 0.5) / h * h / max(h, w), (x + 0.5) / w * w / max(h, w)], -1)


def _upsample(a: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2
    return np.stack([cv2.resize(np.ascontiguousarray(a[..., c]), (w, h), interpolation=cv2.INTER_LINEAR)
                     for c in range(a.shape[-1])], -1)


def _resize_labels(labels: np.ndarray, h: int, w: int) -> np.ndarray:
    """A label map to (h, w), nearest neighbour."""
    if labels.shape == (h, w):
        return labels
    rows = np.minimum(((np.arange(h) + 0.5) * labels.shape[0] / h).astype(int), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * labels.shape[1] / w).astype(int), labels.shape[1] - 1)
    return labels[rows[:, None], cols[None]]


def _fine_labels(image: np.ndarray, grid: np.ndarray, full: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each pixel of `image` given to the nearest centre, the distance maps blurred over EDGE_BLUR px."""
    import cv2
    h, w = image.shape[:2]
    distances = [np.sum((full - c) ** 2, -1) for c in centres]
    sigma = EDGE_BLUR * max(h, w) / AUTO_SIZE
    blurred = [cv2.GaussianBlur(d, (0, 0), sigma) if sigma >= 0.5 else d for d in distances]
    return np.argmin(np.stack(blurred), 0)


# --- k-means and K ----------------------------------------------------------------------------------------

def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, restarts: int = RESTARTS,
           iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(centres (k, D), labels) of Lloyd's k-means from k-means++ starts (Arthur & Vassilvitskii 2007),
    the run of lowest inertia sum ||p - c(p)||^2 of `restarts`. Deterministic for a given `rng` state."""
    points = np.asarray(points, np.float64)
    if len(points) < k:
        raise StyleError(f"{len(points)} points cannot make {k} regions: use a larger image or fewer regions")
    best = None
    for _ in range(restarts):
        centres = _kmeans_plus_plus(points, k, rng)
        for _ in range(iterations):
            labels = _nearest(points, centres)
            moved = np.array([points[labels == j].mean(0) if np.any(labels == j) else centres[j] for j in range(k)])
            if np.allclose(moved, centres):
                break
            centres = moved
        labels = _nearest(points, centres)
        inertia = float(np.sum((points - centres[labels]) ** 2))
        if best is None or inertia < best[0]:
            best = (inertia, centres, labels)
    return best[1], best[2]


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return kmeans(points, k, rng)[0]


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [points[rng.integers(len(points))]]
    d = np.sum((points - centres[0]) ** 2, -1)
    for _ in range(1, k):
        total = d.sum()
        nxt = points[rng.choice(len(points), p=d / total)] if total > 0 else points[rng.integers(len(points))]
        centres.append(nxt)
        d = np.minimum(d, np.sum((points - nxt) ** 2, -1))
    return np.array(centres)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = np.sum(points ** 2, 1)[:, None] - 2 * points @ centres.T + np.sum(centres ** 2, 1)[None]
    return np.argmin(d, 1)


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (b - a) / max(a, b) over the points (0 for a point alone in its cluster)."""
    points = np.asarray(points, np.float64)
    d = np.sqrt(np.maximum(np.sum(points ** 2, 1)[:, None] - 2 * points @ points.T + np.sum(points ** 2, 1)[None], 0))
    ids = np.unique(labels)
    if len(ids) < 2:
        return 0.0
    sums = np.stack([d[:, labels == j].sum(1) for j in ids], 1)
    sizes = np.array([np.sum(labels == j) for j in ids])
    own = np.searchsorted(ids, labels)
    a = sums[np.arange(len(points)), own] / np.maximum(sizes[own] - 1, 1)
    mean_to = sums / sizes[None]
    mean_to[np.arange(len(points)), own] = np.inf
    b = mean_to.min(1)
    s = np.where(sizes[own] > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def _choose_k(points: list[np.ndarray], rng: np.random.Generator) -> int:
    """The K of 2..MAX_AUTO_K with the highest silhouette, averaged over the images."""
    samples = [p[np.sort(rng.choice(len(p), min(len(p), SILHOUETTE_SAMPLE), replace=False))] for p in points]
    scores = {}
    for k in range(2, MAX_AUTO_K + 1):
        if any(len(s) < 2 * k for s in samples):
            break
        scores[k] = np.mean([silhouette(s, kmeans(s, k, rng, restarts=2)[1]) for s in samples])
    return max(scores, key=scores.get) if scores else 2


# --- pairing ---------------------------------------------------------------------------------------------

def pair_regions(content: np.ndarray, content_labels: np.ndarray, styles: list[np.ndarray],
                 style_labels: list[np.ndarray], k: int) -> tuple[tuple[int, tuple[int, ...] | None], ...]:
    """For each of the k content regions, (style image, its style regions) or (style image, None), from
    the region means of `content` (N, D) by `content_labels` (N,) and of each style's features by its
    labels (0, 1, ...): every style region given to the content region of nearest mean; a content
    region takes those that came to it from one style image (the one holding the nearest); one that
    none came to, the nearest style region nearer it than the content's own other regions that is
    free or taken from a region holding others (no style region paints two content regions), else
    the whole style image of nearest mean (the module's doc)."""
    means = _region_means(content, content_labels, k)
    present = [i for i in range(k) if means[i] is not None]
    style_means = [(s, j, m) for s, (f, lab) in enumerate(zip(styles, style_labels))
                   for j, m in enumerate(_region_means(f, lab, int(lab.max()) + 1)) if m is not None]
    whole = [f.mean(0) for f in styles]
    distance = np.array([[np.linalg.norm(means[i] - m) for _, _, m in style_means] for i in present]).reshape(
        len(present), len(style_means))
    came = {i: [] for i in present}                # content region: [(distance, style image, style region)]
    for col, (s, j, _) in enumerate(style_means):
        row = int(np.argmin(distance[:, col]))
        came[present[row]].append((distance[row, col], s, j))
    pairs: dict[int, tuple[int, tuple[int, ...] | None]] = {}
    for i in range(k):
        if means[i] is None:
            pairs[i] = (0, None)
        elif came[i]:
            s = min(came[i])[1]
            pairs[i] = (s, tuple(sorted(j for _, t, j in came[i] if t == s)))
    for i in (i for i in present if not came[i]):
        # nothing came to it: the nearest style region like it (nearer than the content's own other
        # regions) that no region uses, or that one using others too can give up (a style pixel
        # paints one content region: label images say one colour per pixel); else a whole image
        row = present.index(i)
        others = [np.linalg.norm(means[i] - means[o]) for o in present if o != i]
        pairs[i] = (int(np.argmin([np.linalg.norm(means[i] - w) for w in whole])), None)
        for col in np.argsort(distance[row], kind="stable"):
            if others and distance[row, col] >= min(others):
                break
            s, j, _ = style_means[col]
            owner = next((o for o, (t, js) in pairs.items() if t == s and js and j in js), None)
            if owner is None or len(pairs[owner][1]) > 1:
                if owner is not None:
                    pairs[owner] = (s, tuple(x for x in pairs[owner][1] if x != j))
                pairs[i] = (s, (j,))
                break
    return tuple(pairs[i] for i in range(k))


def _region_means(features: np.ndarray, labels: np.ndarray, k: int) -> list[np.ndarray | None]:
    return [features[labels == j].mean(0) if np.any(labels == j) else None for j in range(k)]


def assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a minimum-cost one-to-one matching of a rectangular cost matrix (every row of
    the shorter side matched): the Hungarian method with potentials (Kuhn 1955, Munkres 1957; the
    O(n^3) form of Jonker & Volgenant), as scipy.optimize.linear_sum_assignment returns it."""
    cost = np.asarray(cost, np.float64)
    transposed = cost.shape[0] > cost.shape[1]
    a = cost.T if transposed else cost
    n, m = a.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    match = np.zeros(m + 1, int)          # match[j]: the row (1-based) matched to column j; 0 none
    way = np.zeros(m + 1, int)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        low, used = np.full(m + 1, np.inf), np.zeros(m + 1, bool)
        while match[j0]:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            reduced = a[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < low[1:])
            low[1:][better], way[1:][better] = reduced[better], j0
            candidates = np.where(free, low[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[match[used]] += delta
            v[used] -= delta
            low[1:][free] -= delta
            j0 = j1
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    cols = np.nonzero(match[1:])[0]
    rows = match[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order], cols[order]


# --- agreement with a hand segmentation ---------------------------------------------------------------

def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Hubert & Arabie's adjusted Rand index of two label maps of one shape: 1 for the same partition
    (whatever the numbering), about 0 for an unrelated one."""
    table = _contingency(a, b)
    pairs = lambda n: n * (n - 1) / 2  # noqa: E731
    index, rows, cols = pairs(table).sum(), pairs(table.sum(1)).sum(), pairs(table.sum(0)).sum()
    expected = rows * cols / pairs(table.sum())
    top = (rows + cols) / 2 - expected
    return float((index - expected) / top) if top else 1.0


def matched_iou(found: np.ndarray, hand: np.ndarray) -> float:
    """The mean intersection over union of the hand regions with the found regions matched to them one
    to one (Hungarian, most total IoU); a hand region left without one scores 0."""
    table = _contingency(found, hand)
    union = table.sum(1)[:, None] + table.sum(0)[None] - table
    iou = table / np.maximum(union, 1)
    rows, cols = assignment(-iou)
    return float(iou[rows, cols].sum() / table.shape[1])


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """counts[i, j]: pixels labelled the i-th value of `a` and the j-th of `b`."""
    _, ai = np.unique(np.ravel(a), return_inverse=True)
    _, bi = np.unique(np.ravel(b), return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), np.float64)
    np.add.at(table, (ai, bi), 1)
    return table
