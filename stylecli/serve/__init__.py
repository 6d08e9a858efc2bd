"""`stylecli serve`: a local browser editor (Gradio) over the same pipeline as the CLI.

    backend   the one seam to the models: read, detect, align, encode, edit, synthesize, paste back
    sliders   which directions fit the loaded model, with their suggested ranges
    session   uploads and inversions cached per server, renders, downloads, the equivalent command line
    app       the Gradio page and its events (gradio is imported only there and in server)
    server    load the model once, find the sliders, launch on a local address
"""
