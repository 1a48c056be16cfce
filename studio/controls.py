"""The page's controls, made from the settings' fields (their default, choices, range, help, label),
and the settings a tab's run gets back from their values by name."""

from __future__ import annotations

import functools
import inspect
import math

import gradio as gr

from style_core import ImageSettings, StyleError
from style_core.modes import MODES
from style_core.settings import described

from .state import STATE


def checked(component):
    """A number control whose API value is not a number ("abc", a list) gets a one-line gr.Error
    naming the control, instead of a traceback from Gradio's bounds check."""
    original = component.preprocess

    def preprocess(payload):
        if payload is not None and (isinstance(payload, bool) or not isinstance(payload, (int, float))):
            raise gr.Error(f"{component.label}: {str(payload)[:40]!r} is not a number", print_exception=False)
        try:
            return original(payload)
        except gr.Error as e:  # Gradio's own bounds check: the message without a logged traceback
            raise gr.Error(f"{component.label}: {e.message}", print_exception=False) from None
    component.preprocess = preprocess
    return component


def number(value, name: str, integer: bool = False, low: float | None = None, high: float | None = None):
    """A finite number (an int where `integer`) within [low, high], or a StyleError naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StyleError(f"{name} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise StyleError(f"{name} must be a finite number")
    if (low is not None and x < low) or (high is not None and x > high):
        raise StyleError(f"{name} must be between {low:g} and {high:g}, not {x:g}")
    if integer and x != int(x):
        raise StyleError(f"{name} must be a whole number, not {x:g}")
    return int(x) if integer else x


def _field(classes: tuple, name: str):
    return next(f for cls in classes for f in described(cls) if f.name == name)


def control(classes: tuple, name: str, make=None, **look):
    """The page's control for the field `name` of the first settings class in `classes` that has it:
    its default, choices, range, help (the info line) and label are the field's (a field with a slider
    range in its metadata is a slider); `make` (a Gradio component) and `look` (a label, bounds, a
    device's default) are the page's where it differs."""
    f = _field(classes, name)
    meta = f.metadata
    numeric = str(f.type).startswith(("int", "float"))
    if make is None and "slider" in meta:
        low, high, step = meta["slider"]
        make, look = gr.Slider, dict(minimum=low, maximum=high, step=step) | look
    if make is None and f.name in OPTIONAL_NUMBERS and look.get("value") is None:
        # a number the mode decides (None): a browser shows and sends an empty gr.Number as 0 (coarse
        # iterations 0 ran no coarse steps), and an API parameter with no value is required of every
        # client; an empty text box is that default
        make, look = gr.Textbox, dict(value="") | look
    make = make or (gr.Dropdown if "choices" in meta else gr.Checkbox if f.type == "bool"
                    else gr.Number if numeric else gr.Textbox)
    field_says = dict(value=f.default, info=meta["help"], choices=meta.get("choices"),
                      label=meta.get("label") or meta.get("what", f.name.replace("_", " ")).capitalize(),
                      minimum=meta.get("minimum"), maximum=meta.get("maximum"),
                      precision=0 if str(f.type).startswith("int") else None)
    accepted = inspect.signature(make.__init__).parameters
    component = make(**{**{k: v for k, v in field_says.items() if k in accepted and v is not None}, **look})
    return checked(component) if numeric and not isinstance(component, gr.Textbox) else component


def controls(*classes, **looks) -> dict:
    """The controls of some fields of the settings `classes`, by name and in the page's order (see
    `control`): each look a label, or the page's look as a dict (`slider`, `radio`, `value`)."""
    return {name: control(classes, name, **({"label": look} if isinstance(look, str) else look))
            for name, look in looks.items()}


def the_rest(shown: dict, *classes, skip=(), defaults: dict | None = None) -> dict:
    """A control for every field of `classes` that the page placed nowhere else (`shown`, by setting
    name) and does not leave out (NOT_IN_PAGE, `skip`), starting at the mode's `defaults` (by name:
    the tab's row of `defaults.mode_defaults`) where they differ from the field's: a new setting
    appears in every tab whose mode takes it, by its field alone, as the CLI's options do."""
    placed = {SHOWN_AS.get(name, (name,))[0] for name in shown}
    defaults = defaults or {}
    names = dict.fromkeys(f.name for cls in classes for f in described(cls))   # in order, once each
    return {name: control(classes, name, **({"value": defaults[name]} if name in defaults else {}))
            for name in names if name not in placed and name not in NOT_IN_PAGE and name not in skip}


def image_knobs(shown: dict, d: dict, prefix: str = "", skip=()) -> dict:
    """The image settings' knobs in a tab's Advanced panel, in one layout for every tab: those the tab
    placed elsewhere (`shown`) and `skip` left out, each starting at the mode's default (`d`: the tab's
    row of `defaults.mode_defaults`), then a control for any field placed nowhere (`the_rest`). The
    CLI gives every mode these options; the page gives every tab the same. Must run inside the
    panel's layout block."""
    c: dict = {}
    placed = {SHOWN_AS.get(name, (name,))[0] for name in shown} | set(skip)

    def add(**looks):   # the page's look over the mode's default
        for name, look in looks.items():
            if name not in placed:
                look = {"label": look} if isinstance(look, str) else look
                c[name] = control((ImageSettings,), name, **({"value": d[name]} if name in d else {}) | look)

    add(style_blend=dict(value="", label="Style blend weights"))
    with gr.Row():
        add(backbone=dict(value=STATE.backbone, label="Backbone"), pooling=radio("Pooling"),
            style_layers="Style layers", content_layers=dict(value="", label="Content layers"))
    with gr.Row():
        add(optimizer="Optimizer", lr="Learning rate", loss="Loss kind", huber_delta="Huber delta",
            normalization=radio("Normalisation") | {"elem_id": f"{prefix}normalization"})
    with gr.Row():
        add(init=radio("Start from"), content_weight="Content weight", tv_weight="Smoothness (TV weight; 0 = off)",
            style_scale="Style scale", scales=slider(0, 4, d.get("scales", 0), 1, "Scales (0 = by size)"),
            coarse_iterations="Coarse iterations", seed="Seed", bounds=radio("Pixels while optimising"))
        if "tol" in d:        # the mode's own tolerance (video's 1e-3), shown as the number it is
            add(tol="Stop when the loss falls by less than (per step; 0 = never)")
        elif "tol" not in placed:
            c["until_done"] = until_done_box(d.get("until_done", True))
    with gr.Row():
        c |= the_rest({**shown, **c}, ImageSettings, skip=skip, defaults=d)   # a new setting, by its field
    return c


def slider(low: float, high: float, value: float, step: float, label: str, **look) -> dict:
    return dict(make=gr.Slider, minimum=low, maximum=high, value=value, step=step, label=label, **look)


def radio(label: str) -> dict:
    return dict(make=gr.Radio, label=label)


def strength(value: float, label: str, what: str) -> gr.Slider:
    return checked(gr.Slider(0, 10, value=value, step=0.1, label=label, info=what))


def power_of_ten(weight: float) -> float:
    """A strength slider's value for a weight: exactly its logarithm (a rounded one sent another weight)."""
    return math.log10(weight)


def style_strength(settings: ImageSettings, elem_id: str | None = None) -> gr.Slider:
    """The style weight as its power of ten, starting at the mode's default (`settings`'), in the range
    the trained network needs (relative normalisation: 0.001 barely touches the photo, 1000 repaints
    the painting; bench/LOG.md 22)."""
    value = power_of_ten(settings.style_weight)
    return checked(gr.Slider(-3, 8, value=value, step=0.1, label="Style strength",
                             info=f"style weight = 10^strength ({value:g} = {settings.style_weight:g}, the "
                                  f"default; higher paints more of the painting)", elem_id=elem_id))


def until_done_box(value: bool = True) -> gr.Checkbox:
    return gr.Checkbox(value=value, label="Stop when done",
                       info="L-BFGS ends once the loss falls by less than 0.01% per step; off: every iteration")


def blend_weights(text) -> tuple[float, ...] | None:
    try:
        return tuple(float(b) for b in str(text or "").replace(",", " ").split()) or None
    except ValueError:
        raise StyleError(f"style blend weights must be numbers separated by commas, not {text!r}") from None


def from_strength(value, name: str) -> float:
    """A strength slider's weight: 10^value, and 0 for 0 (off)."""
    value = number(value, name, low=0, high=20)
    return 0.0 if value == 0 else 10.0 ** value


SMOOTHNESS_OFF = -3.0   # the Smoothness slider's floor: TV off (its default, TV weight 1, is 10^0)


def from_smoothness(value) -> float:
    """The Smoothness slider's TV weight: 10^value, and 0 at the slider's floor (off)."""
    value = number(value, "smoothness", low=SMOOTHNESS_OFF, high=20)
    return 0.0 if value <= SMOOTHNESS_OFF else 10.0 ** value


def stop_rule(until_done) -> float | None:
    """The tolerance of "Stop when done": the optimizer's default (L-BFGS ends once the loss no longer
    falls), or 0, every iteration."""
    return None if until_done in (True, None) else 0.0


# Controls that show a setting in another form: the control's name -> the setting and its value. A
# strength is the power of ten of a weight (0: off, where 10^0 = 1 would not be); "Stop when done" is
# the optimizer's tolerance or none; an empty learning rate or layer list is the default one.
SHOWN_AS = {
    "style_strength": ("style_weight", lambda v: 10.0 ** number(v, "style strength", low=-10, high=20)),
    "smoothness": ("tv_weight", from_smoothness),
    "photorealism": ("photo_weight", lambda v: from_strength(v, "photorealism")),
    "temporal_strength": ("temporal_weight", lambda v: from_strength(v, "temporal consistency")),
    "until_done": ("tol", stop_rule),
    "style_blend": ("style_blend", blend_weights),
    "lr": ("lr", lambda v: (number(v, "learning rate") or None) if v not in (None, "") else None),  # 0: default
    "style_layers": ("style_layers", lambda v: v or "paper"),
    # 0: by size (the library's automatic passes); the slider was fixed to the page's first size, so
    # a larger size typed in the page still ran one pass
    "scales": ("scales", lambda v: int(number(v, "scales", integer=True, low=0, high=8)) or None),
}
# The settings no tab has a control for, and why (tests/test_app.py checks that every other field has
# one, with the library's default).
PAGE_PREVIEW_EVERY = 5
NOT_IN_PAGE = {
    "steps_per_call": "Stop ends a run after its current call: the default keeps that short",
    "preview_every": f"a page previews every {PAGE_PREVIEW_EVERY} steps (a live picture), a terminal every 50",
    "weights": "the Weights panel above the tabs chooses them for every tab",
}
PREVIEW_EVERY = {"image": PAGE_PREVIEW_EVERY, "photo": PAGE_PREVIEW_EVERY, "large": 10, "video": 10}


def tab_settings(tab: str, values: dict):
    """A tab's settings from its controls' values by name (the library's defaults for every control
    left alone, which start at the device's sizes and iterations; tests/test_app.py checks every tab)."""
    given = dict(preview_every=PREVIEW_EVERY[tab])
    if tab != "image":   # the image tab has a Backbone control; the others start from the server's
        given["backbone"] = STATE.backbone
    return MODES[tab].settings(setting_values(values), **given)


def _optional_numbers() -> dict[str, bool]:
    """The numeric settings whose default is None (the mode decides), by name: whether each is whole."""
    classes = [MODES[name].settings_class for name in MODES]
    return {f.name: str(f.type).startswith("int") for cls in classes for f in described(cls)
            if f.default is None and str(f.type).startswith(("int", "float"))}


OPTIONAL_NUMBERS = _optional_numbers()


def optional_number(name: str, text: str) -> float | int | None:
    """An optional number's box: empty is None (the mode's default), else its number (its range is the
    settings' to check), or a one-line error naming the control as the page does."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        what = _field(tuple(MODES[m].settings_class for m in MODES), name).metadata.get("what", name.replace("_", " "))
        raise StyleError(f"{what.capitalize()}: {text[:40]!r} is not a number") from None
    return int(value) if OPTIONAL_NUMBERS[name] and value == int(value) else value


def setting_values(values: dict) -> dict:
    """The page's values by setting name (a control in SHOWN_AS turned back into its setting; an
    optional number's text box into its number, empty: None)."""
    named = {}
    for name, value in values.items():
        setting, turn = SHOWN_AS.get(name, (name, None))
        if name in OPTIONAL_NUMBERS and isinstance(value, str):
            turn = functools.partial(optional_number, name)
        named[setting] = turn(value) if turn else value
    return named
