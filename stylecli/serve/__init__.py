"""`stylecli serve`: a local browser editor (Gradio) over the same pipeline as the CLI.

    backend   the one seam to a model: the pipeline's sources and render, tuning, paste back, the
              files a download holds
    encoders  the encoder choice: each model's own encoder, and pivotal tuning from it
    sliders   which directions fit the first model, with their suggested ranges
    session   uploads and inversions cached per server, renders, downloads, the equivalent command line
    app       the Gradio page and its events (gradio is imported only there and in server)
    server    load the models once, find the sliders, launch on a local address
"""
