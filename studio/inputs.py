"""What the page or the API sends, made into the library's inputs (with its loaders' clear errors)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from style_core import StyleError, load_image


def paths(files, what: str = "style images") -> list[str]:
    """Paths of uploaded files (the style images: `what`), whatever shape the API sent them in (a bad
    one is a StyleError)."""
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    found = []
    for f in files:
        path = f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", None) or (
            f.get("path") if isinstance(f, dict) else None)
        if not isinstance(path, str) or not Path(path).is_file():
            raise StyleError(f"{what} must be uploaded image files, not {str(f)[:40]!r}")
        found.append(path)
    return found


def load_inputs(content, styles, what: str = "content image", load=load_image):
    """The content (an image, or what `load` makes of the file: a video's probe) and the style
    images, through style_core's loaders (clear errors)."""
    if not content:
        raise StyleError(f"drop a {what} first")
    style_paths = paths(styles)
    if not style_paths:
        raise StyleError("add at least one style image")
    return load(content), [load_image(p) for p in style_paths]


def guard_inputs(demo: gr.Blocks) -> None:
    """An API value of the wrong shape (a string where a list of files goes), or a path on the server
    where an uploaded file goes, fails Gradio's own checks before any of our code runs, as a traceback
    and an empty error (`{"error": null}`): make it one line."""
    from gradio.exceptions import InvalidPathError
    from pydantic import ValidationError
    original = demo.preprocess_data

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except InvalidPathError:  # a path on the server in a file field: Gradio's refusal said nothing
            raise gr.Error("a file field takes an uploaded file (handle_file in gradio_client), not a path "
                           "on the server", print_exception=False) from None
        except ValidationError as e:
            first = e.errors()[0] if e.errors() else {}
            what = {"ListFiles": "a list of uploaded files", "FileData": "an uploaded file"}.get(e.title, e.title)
            raise gr.Error(f"expected {what}: {first.get('msg', 'invalid value')} "
                           f"(got {str(first.get('input'))[:40]!r})", print_exception=False) from None
    demo.preprocess_data = preprocess_data
