"""Process-wide JAX settings that the entry points (CLI, app, benches) opt into; the library itself
never changes them for its user."""

from __future__ import annotations

import os
from pathlib import Path

import jax

from .weights import cache_dir

COMPILE_CACHE_BYTES = 1 << 30      # the oldest entries go beyond this
COMPILE_CACHE_MIN_SECONDS = 0.2    # quicker compilations are not worth a file


def use_compile_cache(folder: str | os.PathLike | None = None) -> Path | None:
    """Keeps compiled XLA code on disk (`cache_dir()/xla` by default), so that a later process with
    the same shapes and settings compiles less (the first call of one 256 px objective on a 2-core
    CPU: 6.8 s without, 3.3 s with the cache warm; bench/LOG.md 17). A JAX_COMPILATION_CACHE_DIR the
    user set is left as it is; STYLE_CORE_COMPILE_CACHE=off turns it off. Returns the folder in use."""
    if os.environ.get("STYLE_CORE_COMPILE_CACHE", "").lower() in ("off", "0", "false"):
        return None
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    path = Path(folder) if folder else cache_dir() / "xla"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_compilation_cache_max_size", COMPILE_CACHE_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", COMPILE_CACHE_MIN_SECONDS)
    return path
