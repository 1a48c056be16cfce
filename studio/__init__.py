"""The style transfer studio: a Gradio front end over `style_core`, as thin tabs over one runner.

    files          the temporary folder (set before Gradio loads), run folders, pruning
    state          the one state object: weights, backbone, cluster
    runner         one run_mode for every tab: weights loading, Stop, the status line, PNGs
    controls       controls from the settings' fields; the settings back from their values
    inputs         uploads made into the library's inputs
    widgets        drop zones, the pinned result pane, the loss figure
    weights_panel  the Weights panel and the untrained banner
    regions_panel  the painting editor, masks and label images (regions.regions_from)
    tabs/          image, large, photo, video, explore: each its layout and its result view
    page           the page, its launch and the server's command line (app.py calls main)
"""

from . import files  # noqa: F401  (first: Gradio reads GRADIO_TEMP_DIR when it loads)
