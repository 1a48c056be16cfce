"""Large-image mode: print-size outputs painted tile by tile, seamless, in bounded memory.

`stylize_large` runs four stages and yields an `events.Event` throughout:

1. Style targets, once, from the style image at the scale of the *full output* (so a brush stroke
   has the same size in pixels in every tile). A style image too big for one pass is cut into
   aligned pieces with context margins, and the style statistic's sums over them are added up
   (`tiled_targets`).
2. A global pass: image mode on the whole content at a size that fits one pass (`base_size`).
3. Every tile is initialised from the upsampled global result (so neighbouring tiles start out
   agreeing) and optimised against its own content target and the shared style targets.
4. Finished tiles are blended into the canvas with feathered weights that sum to 1 (`tiling.py`).

Only the canvas and the content live at full size, on the host; the device holds one tile (or one
tile per device: with several JAX devices, a batch of tiles is sharded across them). A job folder
keeps the global result and every finished tile, so a stopped or crashed job resumes where it was.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import cluster, color, jobs
from .backbones import layer_table, min_input_side
from .errors import StyleError
from .events import Event, PassClock
from .images import fit_longest_side, resize, resize_longest
from .objective import Aux, Term, content_data, feature_shapes, image_objective, target_features
from .optimize import descend, evaluator
from .regions import Region, area_resize, check_regions, describe, layer_guides, restart_uncovered
from .settings import ImageSettings, check_fields, check_style_scale, mode_dict, setting
from .statistics import add_sums, blend
from .tiling import Feather, Tile, tiles
from .transfer import finish, initial_image, prepare_inputs, scale_shapes, stylize
from .weights import Weights

LARGE_MAX_SIZE = 16384
# Host memory per output pixel: the content at full size and the canvas (float32 RGB each), and the
# canvas's coverage (float32), which shows the canvas filling in.
BYTES_PER_PIXEL = 28
# Style pieces overlap by this much context on every side, and start on multiples of ALIGN so that
# every layer's feature grid (stride up to 32) lines up with the one-pass grid.
STYLE_MARGIN = 64
ALIGN = 32
PREVIEW_SIZE = 1024


@dataclass(frozen=True)
class LargeSettings:
    """Large mode's own knobs; every image-mode knob lives in `image` (its `size` is ignored: the
    global pass runs at `base_size`, the tiles at the output's scale)."""
    image: ImageSettings = field(default_factory=ImageSettings)
    size: int = setting(4096, f"longest side of the output in pixels (at most {LARGE_MAX_SIZE})", minimum=1,
                        label="Output size (px)", slider=(256, LARGE_MAX_SIZE, 64))
    tile: int = setting(512, "tile side in pixels", minimum=1, label="Tile (px)", slider=(64, 1024, 32))
    overlap: int = setting(64, "pixels shared by neighbouring tiles", minimum=0, label="Overlap (px)",
                           slider=(0, 256, 8))
    base_size: int | None = setting(None, "longest side of the global pass whose result initialises the "
                                          "tiles (the tile size); 0: no global pass, every tile starts as "
                                          "init says", minimum=0, label="Global pass size (px)",
                                  slider=(0, 2048, 32))
    tile_iterations: int | None = setting(None, "optimisation steps per tile (the global pass's "
                                                "iterations)", minimum=0, label="Iterations per tile",
                                        slider=(0, 1000, 10))

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_fields(self)
        if self.size > LARGE_MAX_SIZE:
            raise StyleError(f"size {self.size} px is over large mode's limit of {LARGE_MAX_SIZE} px; "
                             f"a square canvas that size would need about "
                             f"{canvas_bytes((self.size, self.size)) / 2**30:.1f} GiB of memory")
        image = self.image
        check_style_scale(image.style_scale, self.size, LARGE_MAX_SIZE)  # the targets are at the output's scale
        need = min_input_side(image.backbone, image.layers)
        if self.tile < need:
            raise StyleError(f"tile {self.tile} px is smaller than {image.backbone} up to "
                             f"{image.deepest_layer} needs ({need} px): use a tile of at least {need} px")
        if self.overlap >= self.tile:
            raise StyleError(f"overlap ({self.overlap} px) must be smaller than the tile ({self.tile} px)")
        base = self.tile if self.base_size is None else self.base_size
        set_("base_size", min(base, self.size))
        if self.base_size:  # validates the global pass (size limits, scales) as image mode would
            set_("image", image.replace(size=self.base_size))
        if self.tile_iterations is None:
            set_("tile_iterations", image.iterations)

    to_dict = mode_dict


def canvas_bytes(shape: tuple[int, int]) -> int:
    return BYTES_PER_PIXEL * shape[0] * shape[1]


@dataclass(frozen=True)
class LargeResult:
    image: np.ndarray                      # (H, W, 3) float32 in [0, 1]
    settings: LargeSettings
    weights_source: str
    trained_weights: bool
    layout: list[Tile]
    tile_losses: list[dict[str, float]]    # final losses of each tile, in layout order
    base_losses: dict[str, float]          # final losses of the global pass ({} without one)
    tiles_resumed: int                     # tiles read back from the job folder, not optimised
    seconds: float
    stop_reason: str
    remade: tuple[str, ...] = ()           # damaged job files (relative to the job folder) made again
    regions: tuple[Region, ...] = ()
    units: tuple[dict, ...] = ()           # where each unit of tiles ran: node, worker, seconds, retries

    def report(self) -> dict:
        return {"mode": "large", "settings": self.settings.to_dict(), "backbone": self.settings.image.backbone,
                "weights_source": self.weights_source, "trained_weights": self.trained_weights,
                "output_size": list(self.image.shape[:2]), "tiles": len(self.layout),
                "tile_shape": [self.layout[0].height, self.layout[0].width],
                "tiles_resumed": self.tiles_resumed, "base_losses": self.base_losses,
                "tile_losses": self.tile_losses, "seconds": round(self.seconds, 3),
                "stop_reason": self.stop_reason, "remade": list(self.remade),
                **({"regions": describe(self.regions)} if self.regions else {}),
                "backend": cluster.summary(self.units), "units": list(self.units)}


# --- style targets for the whole canvas ---------------------------------------------------------------

def _pieces(length: int, core: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(crop start, crop stop, core start, core stop) along one axis: cores partition [0, length)
    and start on multiples of ALIGN; crops add `margin` px of context on each side."""
    out = []
    for c0 in range(0, length, core):
        c1 = min(c0 + core, length)
        out.append((max(0, c0 - margin), min(length, c1 + margin), c0, c1))
    return out


def tiled_targets(settings: ImageSettings, variables: Mapping, image: np.ndarray, core: int,
                  margin: int = STYLE_MARGIN) -> dict[str, Any]:
    """The style statistic's targets of `image` at every style layer, as one pass would make them, in
    pieces.

    An image up to `core + 2 * margin` px a side is one pass. A larger one is cut into cores of
    `core` px (rounded to ALIGN) that partition it; each core is run with `margin` px of context
    around it, and only the feature positions inside the core count, so each position is counted
    once: the statistic's sums (`statistics.py`; Gram: F_core^T F_core and the positions) add up over
    the pieces. The result differs from one pass only through context beyond the margin, at deep
    layers.
    """
    statistic = settings.statistic
    moments = tiled_moments(settings, variables, image, [None], core, margin)[0]
    return {k: statistic.target(m) for k, m in moments.items()}


def tiled_guided_targets(settings: ImageSettings, variables: Mapping, image: np.ndarray,
                         masks: Sequence[np.ndarray | None], core: int, margin: int = STYLE_MARGIN,
                         ) -> list[dict[str, Any]]:
    """`tiled_targets` under each of `masks` (None: no mask): the guided targets of `regions.py`."""
    statistic = settings.statistic
    return [{k: statistic.target(m) for k, m in moments.items()}
            for moments in tiled_moments(settings, variables, image, masks, core, margin)]


def tiled_moments(settings: ImageSettings, variables: Mapping, image: np.ndarray,
                  masks: Sequence[np.ndarray | None], core: int, margin: int = STYLE_MARGIN,
                  ) -> list[dict[str, Any]]:
    """The style statistic's moments of `image` under each of `masks`, from one run of the pieces for
    all of them (see `tiled_targets`). The mask is brought to each layer's grid of the *whole* image
    and normalised by its mass there (`regions.layer_guides`), and each piece's core weighted by its
    cut of that: the pieces' sums add up to the one-pass sums, however the mask falls across the
    pieces (a piece it misses adds nothing)."""
    layers, statistic = settings.style_layers, settings.statistic
    features = target_features(settings.backbone, settings.pooling, layers)
    height, width = image.shape[:2]
    guides = [dict.fromkeys(layers) if m is None else
              layer_guides(m, feature_shapes(settings, variables, (height, width))) for m in masks]
    if max(height, width) <= core + 2 * margin:
        maps = features(variables, jnp.asarray(image))
        return [{k: statistic.moments(statistic.sums(maps[k], g[k])) for k in layers} for g in guides]
    core = max(ALIGN, core // ALIGN * ALIGN)
    margin = math.ceil(margin / ALIGN) * ALIGN
    strides = {info.name: info.stride for info in layer_table(settings.backbone)}
    sums = [dict.fromkeys(layers) for _ in guides]
    for a0, a1, c0, c1 in _pieces(height, core, margin):
        for b0, b1, d0, d1 in _pieces(width, core, margin):
            maps = features(variables, jnp.asarray(image[a0:a1, b0:b1]))
            for name, f in maps.items():
                s = strides[name]
                r0, r1 = (c0 - a0) // s, (c1 - a0) // s if c1 < height else f.shape[0]
                q0, q1 = (d0 - b0) // s, (d1 - b0) // s if d1 < width else f.shape[1]
                core_f = f[r0:r1, q0:q1]    # at feature (a0 / s + r0, b0 / s + q0) of the whole image's grid
                for total, g in zip(sums, guides):
                    cut = None if g[name] is None else g[name][a0 // s + r0:a0 // s + r1, b0 // s + q0:b0 // s + q1]
                    total[name] = add_sums(total[name], statistic.sums(core_f, cut))
    return [{name: statistic.moments(total[name]) for name in layers} for total in sums]


# --- several devices: a batch of tiles, sharded -------------------------------------------------------

@functools.lru_cache(maxsize=16)
def batched_terms(terms):
    """The terms of a batch of tiles (B, h, w, 3), summed: each tile has its own data for every term
    (stacked along the batch), the backbone's variables are shared. The tiles do not interact: each
    one's gradient is its own."""
    def batch(x, aux):
        values = jax.vmap(terms, in_axes=(0, Aux(None, 0)))(x, aux)
        return {k: v.sum() for k, v in values.items()}
    return batch


def _shard(tree, mesh: Mesh):
    """A batch of tiles, or an `Aux` whose data are per tile, split along the batch over the mesh; the
    backbone's variables replicated on every device."""
    split, whole = NamedSharding(mesh, PartitionSpec("tiles")), NamedSharding(mesh, PartitionSpec())
    if isinstance(tree, Aux):
        return Aux(jax.device_put(tree.variables, whole), jax.device_put(tree.data, split))
    return jax.device_put(tree, split)


# --- the job ------------------------------------------------------------------------------------------

# The job folder keeps the global pass and every finished tile, float32 with their losses: read back exactly.
BASE, TILE = jobs.Piece("base.npz", jobs.NPZ), jobs.Piece("tiles/{:05d}.npz", jobs.NPZ)
PIECES = (BASE, TILE)


def output_targets(prepared: Sequence[np.ndarray], settings: LargeSettings, weights: Weights,
                   shape: tuple[int, int], regions: Sequence[Region] = ()):
    """The style statistic's blended targets of the (prepared) style images at the scale of a `shape`
    output; with `regions`, each region's guided targets of its style image under its style mask
    instead (a tuple in region order, as `objective.region_targets` makes them), each style image run
    once for all its regions."""
    image_settings, need = settings.image, min_input_side(settings.image.backbone, settings.image.layers)
    statistic = image_settings.statistic
    scaled = []
    for style in prepared:
        s = resize_longest(style, max(1, round(image_settings.style_scale * max(shape))))
        if min(s.shape[:2]) < need:
            raise StyleError(f"a style image is {s.shape[1]}x{s.shape[0]} px at this size, but "
                             f"{image_settings.backbone} needs at least {need} px: raise `style_scale`")
        scaled.append(s)
    if regions:
        per_style = {k: iter(tiled_guided_targets(image_settings, weights.variables, scaled[k],
                                                  [r.style_mask for r in regions if r.style == k], settings.tile))
                     for k in sorted({r.style for r in regions})}
        return tuple(next(per_style[r.style]) for r in regions)
    moments = [tiled_moments(image_settings, weights.variables, s, [None], settings.tile)[0] for s in scaled]
    return {name: statistic.target(blend([m[name] for m in moments], image_settings.style_blend))
            for name in image_settings.style_layers}


def tile_style_losses(image: np.ndarray, content: np.ndarray, styles: Sequence[np.ndarray],
                      settings: LargeSettings, weights: Weights, layout: Sequence[Tile],
                      regions: Sequence[Region] = ()) -> list[float]:
    """The style loss of each tile of `image` (an output, e.g. the blended canvas), against the
    style targets large mode uses for an output of its shape (with `regions`, theirs, each tile with
    its cut of the masks): how evenly the style took."""
    s, shape = settings.image, image.shape[:2]
    _, prepared = prepare_inputs(content, styles, s)
    regions = check_regions(regions, len(styles), s.style_blend)
    targets = output_targets(prepared, settings, weights, shape, regions)
    full = resize(content, *shape)
    objective = image_objective(s, regions=bool(regions))
    evaluate = evaluator(objective.function)
    seen = color.luminance if s.preserve_color == "luminance" else (lambda x: x)  # what the network saw
    return [float(evaluate(jnp.asarray(seen(image[t.slices])), objective.aux(
        weights.variables, seen(full[t.slices]), targets, [area_resize(r.mask, *shape, t.slices) for r in regions]),
        objective.weights)[1]["style"]) for t in layout]


def check_memory(shape: tuple[int, int]) -> None:
    """Refuses a canvas that would not fit in this machine's memory."""
    need = canvas_bytes(shape)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.8 * have:
        raise StyleError(f"a {shape[1]}x{shape[0]} canvas needs about {need / 2**30:.1f} GiB of memory, "
                         f"more than this machine's {have / 2**30:.1f} GiB allows: use a smaller size")


def stylize_large(content: np.ndarray, styles: Sequence[np.ndarray], settings: LargeSettings,
                  weights: Weights, job: str | os.PathLike | None = None, resume: bool = False, *,
                  extras: Sequence[Term] = (), regions: Sequence[Region] = (),
                  backend: cluster.Local | cluster.RayCluster | None = None) -> Iterator[Event]:
    """Paints `content` at `settings.size` px tile by tile; yields progress, the last event has the
    result. With `job`, finished work is kept in that folder and `resume` continues it. `extras` add
    loss terms to the global pass and to every tile, as `stylize`'s do (their data made per tile).

    `regions` (`regions.Region`, as `stylize` takes them): the global pass gets them; each region's
    style targets are computed once for the canvas (its style image under its style mask at the
    output's scale); each tile gets its cut of the masks brought to the output's size, and a region
    that does not reach a tile weighs 0 there. Pixels no region covers get only the content term, and
    start each tile from the content (with a content init), not from the global pass.

    `backend` (`cluster.py`) runs the tiles: here by default (a batch over this host's devices), or a
    task per tile on a Ray cluster; the job folder and the canvas stay here either way."""
    image_settings = settings.image
    if weights.backbone != image_settings.backbone:
        raise StyleError(f"weights are for {weights.backbone}, settings ask for {image_settings.backbone}")
    start = time.perf_counter()
    shape = fit_longest_side(content.shape[:2], settings.size)
    check_memory(shape)
    layout = tuple(tiles(shape, settings.tile, settings.overlap))
    need = min_input_side(image_settings.backbone, image_settings.layers)
    if min(layout[0].height, layout[0].width) < need:
        t = layout[0]
        raise StyleError(f"the tiles are {t.width}x{t.height} px, too small: {image_settings.backbone} "
                         f"up to {image_settings.deepest_layer} needs at least {need} px on each side")
    _, prepared = prepare_inputs(content, styles, image_settings)  # one-line errors before the job folder
    regions = check_regions(regions, len(styles), image_settings.style_blend)
    folder = None
    if job is not None:  # the regions are inputs too: a job with other masks is another job
        marks = [a for r in regions for a in (r.mask, np.ones((1, 1)) if r.style_mask is None else r.style_mask,
                                              np.float32([r.style]))]
        key = jobs.fingerprint((content, *styles, *marks), settings, weights)
        folder = jobs.JobFolder(job, key, resume, PIECES,
                                {"settings": settings.to_dict(), "output_shape": list(shape), "tiles": len(layout),
                                 "weights": weights.source, **({"regions": describe(regions)} if regions else {})})
    def event(**fields) -> Event:
        return Event(total=len(layout), unit="tile", shape=shape, layout=layout,
                     seconds=time.perf_counter() - start, **fields)

    # 1. style targets at the output's scale
    yield event(stage="style targets", completed=0)
    targets = output_targets(prepared, settings, weights, shape, regions)
    # 2. the global pass, whose result starts every tile
    base, base_losses = None, {}
    if settings.base_size:
        base, base_losses = yield from _global_pass(content, styles, settings, weights, folder, extras, regions,
                                                    event)
    if base is not None and len(layout) == 1 and base.shape[:2] == shape:  # one pass made the output
        image, tile_losses, resumed, finished, places = base, [base_losses], 0, "finished in one pass", []
    else:
        # 3. the tiles, blended into the canvas as they finish; one content divisor for every tile (1
        # for "paper"; "relative": from the whole content at tile size), so that a flat tile's content
        # term weighs what a busy one's does
        small = resize_longest(content, min(settings.tile, max(shape)))
        small = color.luminance(small) if image_settings.preserve_color == "luminance" else small
        norms = content_data(image_settings, weights.variables, small)["norms"]
        work = TileWork(settings, tuple(extras), norms, bool(regions), weights.variables, targets)
        canvas = Canvas(shape, layout, resize(content, *shape), base)
        tile_losses, resumed, places = yield from _paint_tiles(canvas, work, prepared, regions, base, folder, event,
                                                               backend or cluster.Local())
        # 4. the canvas: the weights sum to 1 everywhere, so it is complete
        image, finished = canvas.finished(), "finished"
    result = LargeResult(image, settings, weights.source, weights.trained, list(layout), tile_losses,
                         base_losses, resumed, time.perf_counter() - start,
                         _stop_reason(base_losses, tile_losses) or finished,
                         tuple(folder.remade) if folder else (), regions, tuple(places))
    yield event(stage="done", completed=len(layout), step=settings.tile_iterations,
                steps=settings.tile_iterations, losses=tile_losses[-1], eta=0.0, preview=_preview(image),
                result=result)


def _global_pass(content, styles, settings: LargeSettings, weights: Weights, folder, extras, regions, event):
    """Image mode on the whole content at `base_size` (or its result from the job folder); yields its
    progress, returns (image, final losses with its stop reason)."""
    image_settings = settings.image
    stored = folder.load(BASE, shape=scale_shapes(content.shape[:2], image_settings)[-1]) if folder else None
    if stored is not None:
        return stored
    for e in stylize(content, styles, image_settings, weights, extras=extras, regions=regions):
        if not e.done:
            yield event(stage="global pass", completed=0, step=e.completed, steps=e.total, losses=e.losses,
                        preview=e.preview, eta=e.eta)
    base, losses = e.result.image, {**e.result.final_losses, "stop_reason": e.result.stop_reason}
    if folder:
        folder.save(BASE, image=base, meta=losses)
    return base, losses


class Canvas:
    """The output being painted: finished tiles added with feathered weights that sum to 1 (so the
    canvas is complete once every tile is in), and its preview, which shows the global pass (or the
    content) where no tile is done yet."""

    def __init__(self, shape: tuple[int, int], layout: Sequence[Tile], content: np.ndarray,
                 base: np.ndarray | None):
        self.layout, self.feather = layout, Feather(shape, list(layout))
        self.content = content   # at the output's size
        self.image = np.zeros((*shape, 3), np.float32)
        self.coverage = np.zeros(shape, np.float32)
        self.under = _preview(content) if base is None else resize(base, *_preview(self.image).shape[:2])

    def place(self, t: Tile, image: np.ndarray) -> None:
        w = self.feather(t)
        self.image[t.slices] += w[..., None] * image
        self.coverage[t.slices] += w

    def preview(self) -> np.ndarray:
        return np.clip(_preview(self.image) + (1.0 - _preview(self.coverage)[..., None]) * self.under, 0.0, 1.0)

    def finished(self) -> np.ndarray:
        self.content = self.coverage = None  # freed before the result is handed over
        return np.clip(self.image, 0.0, 1.0, out=self.image)


@dataclass(frozen=True)
class TileWork:
    """What every tile of a job shares (on a cluster, put in the object store once): the settings,
    the mode's extra terms, the content divisors, whether the style term is that of regions, the
    backbone's variables and the style targets (made by the settings' style statistic, whatever it
    is: the cluster ships them as they are). Each tile's objective is made from these where it
    runs, so that its compiled code is cached there."""
    settings: LargeSettings
    extras: tuple
    norms: Any
    regions: bool
    variables: Mapping
    targets: Any

    def objective(self):
        return image_objective(self.settings.image, self.extras, content_norm=self.norms, regions=self.regions)


@dataclass(frozen=True)
class TileInputs:
    """One unit of tiles (one per device of a batch): each tile's content as the network sees it, its
    original content (for colour preservation), its start, its cut of the region masks."""
    tiles: tuple[Tile, ...]
    content: tuple[np.ndarray, ...]
    original: tuple[np.ndarray, ...]
    starts: tuple[np.ndarray, ...]
    masks: tuple[tuple[np.ndarray, ...], ...]


class TileProgress(NamedTuple):
    """A unit of tiles at work: its step, and its losses there."""
    step: int
    losses: dict


class PaintedTile(NamedTuple):
    """A finished tile: its image (clipped, colours preserved as asked) and its final losses."""
    image: np.ndarray
    losses: dict


def paint(work: TileWork, unit: TileInputs, device=None):
    """Optimises a unit of tiles (a batch sharded over this host's devices when it holds several);
    yields a `TileProgress` per chunk, returns each tile's `PaintedTile` in order."""
    image_settings, objective = work.settings.image, work.objective()
    per_tile = [objective.aux(work.variables, c, work.targets, m) for c, m in zip(unit.content, unit.masks)]
    batch = len(unit.tiles)
    if batch == 1:
        aux, run_terms, x_start = per_tile[0], objective.function, jnp.asarray(unit.starts[0])
    else:
        mesh = Mesh(np.array(jax.devices()[:batch]), ("tiles",))
        aux = _shard(Aux(work.variables, jax.tree_util.tree_map(lambda *v: jnp.stack(v),
                                                                *[a.data for a in per_tile])), mesh)
        run_terms = batched_terms(objective.function)
        x_start = _shard(jnp.stack([jnp.asarray(x) for x in unit.starts]), mesh)
    for report in descend(x_start, run_terms, aux, objective.weights, iterations=work.settings.tile_iterations,
                          optimizer=image_settings.optimizer, lr=image_settings.lr,
                          steps_per_call=image_settings.steps_per_call, tol=image_settings.tol,
                          bounds=image_settings.bounds, average=image_settings.average):
        if report.finished:
            break
        yield TileProgress(report.step, dict(report.losses))
    images = np.asarray(report.x).reshape(batch, *unit.starts[0].shape)
    out = []
    for k in range(batch):
        losses = dict(report.losses) if batch == 1 else _losses(objective, images[k], per_tile[k])
        finished = finish(images[k], unit.original[k], image_settings)
        out.append(PaintedTile(finished, {**losses, "stop_reason": report.stop_reason}))
    return out


def _paint_tiles(canvas: Canvas, work: TileWork, prepared, regions, base, folder, event, backend):
    """Every tile not kept in the job folder optimised by `backend` (locally, a batch of tiles at once
    over several devices; on a cluster, a task per tile) against its own content and the shared style
    targets (with `regions`, its cut of their masks), from the global pass's result; yields progress,
    returns (each tile's final losses, the number of tiles resumed, where each unit ran)."""
    settings = work.settings
    image_settings, layout, shape = settings.image, canvas.layout, canvas.image.shape[:2]
    luminance = color.luminance if image_settings.preserve_color == "luminance" else (lambda x: x)
    batch = len(jax.devices()) if backend.name == "local" else 1
    tile_losses: list[dict] = [{} for _ in layout]
    todo = []
    for t in layout:
        stored = folder.load(TILE, t.index, shape=(t.height, t.width)) if folder else None
        if stored is None:
            todo.append(t)
            continue
        canvas.place(t, stored[0])
        tile_losses[t.index] = stored[1]
    resumed = len(layout) - len(todo)
    if resumed:
        yield event(stage="tiles", completed=resumed, steps=settings.tile_iterations, preview=canvas.preview())
    groups = [todo[first:first + batch] for first in range(0, len(todo), batch)]

    def inputs(group: list[Tile]) -> TileInputs:
        members = group + [group[-1]] * (batch - len(group))  # a full batch: one compiled shape
        content = [luminance(canvas.content[t.slices]) for t in members]
        masks = [tuple(area_resize(r.mask, *shape, t.slices) for r in regions) for t in members]
        x0 = [luminance(resize(base, *shape, region=t.slices)) if base is not None
              else _tile_init(image_settings, c, prepared, t) for t, c in zip(members, content)]
        if base is not None and regions:
            x0 = [restart_uncovered(x, m, _tile_init(image_settings, c, prepared, t))
                  for x, m, c, t in zip(x0, masks, content, members)]
        return TileInputs(tuple(members), tuple(content), tuple(canvas.content[t.slices] for t in members),
                          tuple(x0), tuple(masks))

    # every tile's steps as one pass
    places, optimised, running, clock = [], 0, {}, PassClock([(1, len(todo) * settings.tile_iterations)])
    for update in backend.run(paint, work, map(inputs, groups)):
        if isinstance(update, cluster.Progress):
            step, losses = update.value.step, update.value.losses
            running[update.index] = step * len(groups[update.index])
            eta = clock.left(optimised * settings.tile_iterations + sum(running.values()))
            yield event(stage="tiles", completed=resumed + optimised, step=step, steps=settings.tile_iterations,
                        losses=losses, eta=eta)
            continue
        running.pop(update.index, None)
        group = groups[update.index]
        for t, painted in zip(group, update.value):
            if folder:
                folder.save(TILE, t.index, image=painted.image, meta=painted.losses)
            canvas.place(t, painted.image)
            tile_losses[t.index] = painted.losses
        places.append({"unit": update.index, "tiles": [t.index for t in group], **update.where})
        optimised += len(group)
        eta = clock.left(optimised * settings.tile_iterations + sum(running.values()))
        yield event(stage="tiles", completed=resumed + optimised, step=settings.tile_iterations,
                    steps=settings.tile_iterations, losses=tile_losses[group[-1].index], eta=eta,
                    preview=canvas.preview())
    return tile_losses, resumed, places


def _losses(objective, x: np.ndarray, aux) -> dict[str, float]:
    """Every term of one tile of a batch, and their weighted total."""
    total, values = evaluator(objective.function)(jnp.asarray(x), aux,
                                                  {n: jnp.float32(v) for n, v in objective.weights.items()})
    return {"total": float(total), **{n: float(v) for n, v in values.items()}}


def _stop_reason(base_losses: dict, tile_losses: Sequence[dict] = ()) -> str | None:
    """The first divergence, in order (the global pass, then the tiles), by its losses'
    "stop_reason", naming the pass; None if none diverged."""
    passes = [("the global pass", base_losses)] + [(f"tile {k}", t) for k, t in enumerate(tile_losses)]
    for name, losses in passes:
        why = str(losses.get("stop_reason", ""))
        if why.startswith("diverged"):
            return f"{why} (in {name})"
    return None


def _tile_init(settings: ImageSettings, content: np.ndarray, styles: Sequence[np.ndarray], t: Tile) -> np.ndarray:
    """Without a global pass, each tile starts as image mode would (noise seeded per tile, the seed
    wrapping round at 2**32, the range of seeds)."""
    return initial_image(settings.replace(seed=(settings.seed + t.index) % 2 ** 32), content, styles)


def _preview(image: np.ndarray) -> np.ndarray:
    k = max(1, math.ceil(max(image.shape[:2]) / PREVIEW_SIZE))
    return np.ascontiguousarray(image[::k, ::k])
