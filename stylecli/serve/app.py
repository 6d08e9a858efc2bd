"""The Gradio page: upload, pick a face, move sliders, compare, download. All work is EditorSession's.

The edit is also an API endpoint, `edit` (gradio_client: `client.predict(..., api_name="/edit")`), whose
parameters are named after the sliders (`age`, `ganspace_smile`, `sefa_0`, ...); `encoder` takes a choice's key
(`e4e`, `e4e+tuning`, `restyle`, ...).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stylecli.constants import PTI_STEPS
from stylecli.errors import StyleCliError
from stylecli.serve.session import EditorSession, SessionNotice

log = logging.getLogger("stylecli.serve")

INTRO = ("Upload a photo: its faces are found, the chosen one is aligned and inverted once, and every slider "
         "renders the edit into the photo.")
LOCAL = " Nothing leaves this machine."  # not said under --share (a public link through Gradio's servers)
KEEP_NOTE = ("GANSpace sliders are left unconditioned (they move to a target coordinate; `stylecli edit --keep` "
             "refuses them).")
# Faces fill their boxes (a small generator's output is scaled up with visible pixels, not left as a speck).
CSS = """#status p { margin: 0; }
#command textarea { font-family: monospace; }
#aligned img, #reconstruction img, #edited img { width: 100%; height: 100%; object-fit: contain;
  image-rendering: pixelated; }"""


def build_app(session: EditorSession, title: str = "stylecli editor", share: bool = False):
    """The page and its events; every model call goes through `session`. share: the page is also public."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    directions, uploads = session.directions, Path(get_upload_folder())
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(900, 1800)) as demo:
        c, sliders = _page(gr, session, title, share)
        shown = [c.status, c.aligned, c.recon, c.edited, c.compare, c.command, c.files]
        options = [c.paste, c.blend, c.keep, c.encoder]
        by_name = {"photo": c.photo, "face": c.face, "paste": c.paste, "blend": c.blend, "keep": c.keep,
                   "encoder": c.encoder, **dict(zip(_keys(directions), sliders))}

        def edit(photo: str | None, face: float | None, paste: bool = True, blend: str = "feather",
                 keep: list[str] | None = None, encoder: str | None = None, request=None, progress=gr.Progress(),
                 **strengths: float):
            """Edit the chosen face of a photo with the slider values, inverted by `encoder` (default: the first
            model's own); returns the status line, the aligned crop, the reconstruction, the edited face, the
            (photo, edited photo) preview pair, the command line and the downloads (the edited photo at full
            resolution, the face, the latent .npy, its .align.json and, for a face rendered with its own
            generator weights, its .tuned.safetensors or .hyperstyle.npz)."""
            return _render(session, uploads, photo, int(face or 0), strengths, paste, blend, keep, encoder, True,
                           progress, _client(request))

        def preview(photo, face, paste=True, blend="feather", keep=None, encoder=None, request=None,
                    progress=gr.Progress(), **strengths):
            return _render(session, uploads, photo, int(face or 0), strengths, paste, blend, keep, encoder, False,
                           progress, _client(request))

        # Gradio fills in only the special parameters before *args (the request, the event's data, its progress).
        def opened(request=None, progress=gr.Progress(), *values):
            photo, *options = values
            zeros = {d.slider.key: 0.0 for d in directions}
            out = _render(session, uploads, photo, 0, zeros, *options, False, progress, _client(request), fresh=True)
            return (_gallery(gr, session, photo), 0, *zeros.values(), *out)

        def picked(evt, request=None, progress=gr.Progress(), *values):
            index, (photo, *rest) = int(evt.index), values
            return (index, *preview(photo, index, *rest[:4], request=request, progress=progress,
                                    **dict(zip(_keys(directions), rest[4:]))))

        # Gradio finds the request and the event's data by their types; the string annotations of this module name
        # a local import. Each browser session (gr.Request's session_hash) has files of its own.
        picked.__annotations__ = {"evt": gr.SelectData, "request": gr.Request}
        for fn in (edit, preview, opened):
            fn.__annotations__["request"] = gr.Request

        c.photo.upload(opened, [c.photo, *options], [c.gallery, c.face, *sliders, *shown], api_visibility="private",
                       concurrency_id="model")
        c.photo.clear(lambda: ("Upload a photo to start.", *[None] * 6), None, shown, api_visibility="private")
        c.gallery.select(picked, [c.photo, *options, *sliders], [c.face, *shown], api_visibility="private",
                         concurrency_id="model")
        # Sliders listen to `change`, so their own reset buttons and "Reset sliders" render too. Rapid changes
        # coalesce (always_last: the latest state is rendered once the running render is done).
        c.reset.click(lambda: [0.0] * len(sliders), None, sliders, api_visibility="private", queue=False)
        gr.on([*(s.change for s in sliders), c.paste.input, c.blend.input, c.keep.input, c.face.submit], preview,
              inputs_kwargs=by_name, outputs=shown, api_visibility="private", trigger_mode="always_last",
              concurrency_id="model", show_progress="minimal")
        # A new encoder inverts the face again (tuning: many steps): its progress shows over the results.
        c.encoder.input(preview, inputs_kwargs=by_name, outputs=shown, api_visibility="private",
                        trigger_mode="always_last", concurrency_id="model")
        c.save.click(edit, inputs_kwargs=by_name, outputs=shown, api_name="edit", concurrency_id="model")
    return demo


def _page(gr, session: EditorSession, title: str, share: bool = False):
    """The components, in three columns: the photo and its face; the results; the controls."""
    from types import SimpleNamespace

    backend, c = session.backend, SimpleNamespace()
    gr.Markdown(f"## {title}\n{INTRO}{'' if share else LOCAL}")
    with gr.Row():
        with gr.Column(scale=1):
            c.photo = _photo_file(gr, label="Photo", file_types=["image"], type="filepath", elem_id="photo")
            c.status = gr.Markdown("Upload a photo to start.", label="Status", elem_id="status")
            c.gallery = gr.Gallery(label="Faces: pick one", visible=False, columns=6, height=150,
                                   allow_preview=False, elem_id="faces")
            c.face = gr.Number(0, label="Face (0 = largest)", precision=0, minimum=0, elem_id="face")
            with gr.Row():
                c.aligned = gr.Image(label="Aligned crop", format="png", interactive=False, height=220,
                                     elem_id="aligned")
                c.recon = gr.Image(label="Reconstruction", format="png", interactive=False, height=220,
                                   elem_id="reconstruction")
        with gr.Column(scale=1):
            c.edited = gr.Image(label="Edited face", format="png", interactive=False, height=256, elem_id="edited")
            c.compare = gr.ImageSlider(label="Before / after", format="png", interactive=False, elem_id="compare")
            c.command = gr.Textbox(label="The same edit from the shell", interactive=False, buttons=["copy"],
                                   elem_id="command")
            c.save = gr.Button("Prepare downloads (full resolution)", elem_id="save")
            c.files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        with gr.Column(scale=1):
            c.paste = gr.Checkbox(True, label="Paste back into the photo", elem_id="paste")
            c.blend = gr.Radio(backend.blends, value="feather", label="Blend", elem_id="blend",
                               visible=len(backend.blends) > 1)
            encoders = [(e.label, e.key) for e in session.encoders]
            c.encoder = gr.Dropdown(encoders, value=encoders[0][1], label="Encoder", info=_encoder_info(session),
                                    visible=len(encoders) > 1, elem_id="encoder")
            c.reset = gr.Button("Reset sliders", elem_id="reset")
            sliders = _sliders(gr, session.directions)
            with gr.Accordion("Keep", open=False):
                ganspace = any(d.slider.relative for d in session.directions)
                c.keep = gr.CheckboxGroup(session.keep_choices, label="Edits move orthogonally to these",
                                          info=KEEP_NOTE if ganspace else None, elem_id="keep")
    return c, sliders


class UploadedPath(str):
    """The path of the server's copy of an upload, carrying the name the file had on the user's machine."""

    orig_name: str | None = None


def _photo_file(gr, **kwargs):
    """gr.File whose value also carries the name the file had on the user's machine (`orig_name`): the web
    server strips characters such as `! $ { } :` from its own copy's name. The name comes from the upload's
    `gr.FileData` through the component's public `preprocess` (wrapped on the instance: a subclass of a Gradio
    component makes Gradio write a .pyi beside this module)."""
    photo = gr.File(**kwargs)
    preprocess = photo.preprocess

    def with_name(payload):
        value = preprocess(payload)
        if isinstance(value, str) and isinstance(payload, gr.FileData):
            value = UploadedPath(value)
            value.orig_name = payload.orig_name
        return value

    photo.preprocess = with_name
    return photo


def _encoder_info(session: EditorSession) -> str | None:
    """What the choice means: a face is inverted once per choice; tuning is a short run of PTI."""
    tuned = next((e.tuner for e in session.encoders if e.tuner is not None), None)
    if tuned is None:
        return "Each face is inverted once per encoder."
    return (f"Each face is inverted once per encoder. Tuning (PTI) adapts the generator to the face: at most "
            f"{tuned.config.steps} steps here, where `--tune` runs up to {PTI_STEPS} (PTI reports about 2 minutes for "
            "those on a GPU; a CPU is far slower). Its progress shows over the results.")


def _keys(directions) -> list[str]:
    return [d.slider.key for d in directions]


def _sliders(gr, directions) -> list[Any]:
    out = []
    groups = list(dict.fromkeys(d.slider.group for d in directions))
    for i, group in enumerate(groups):
        with gr.Accordion(group, open=i == 0 or group == "Your directions"):
            for d in (d for d in directions if d.slider.group == group):
                s = d.slider
                info = "shift from the face's own value (target coordinate in the command)" if s.relative else None
                out.append(gr.Slider(-s.limit, s.limit, value=0.0, step=s.step, label=s.label, info=info,
                                     elem_id=f"slider-{s.key}", buttons=["reset"]))
    return out


def _gallery(gr, session: EditorSession, photo: str | None):
    """Thumbnails of the faces when there is more than one to choose from."""
    upload = session.cached(photo, getattr(photo, "orig_name", None)) if photo else None
    if upload is None or len(upload.faces) < 2:
        return gr.Gallery(value=None, visible=False)
    labels = ["0 (largest)", *map(str, range(1, len(upload.faces)))]
    return gr.Gallery(value=list(zip(session.face_thumbnails(upload), labels)), visible=True)


def _client(request) -> str | None:
    """The browser session a request comes from (each gradio_client Client, each page load has its own)."""
    return getattr(request, "session_hash", None) or None


def _render(session: EditorSession, uploads: Path, photo: str | None, index: int, strengths: dict[str, float],
            paste: bool, blend: str | None, keep: list[str] | None, encoder: str | None, save: bool,
            progress=None, client: str | None = None, fresh: bool = False) -> tuple:
    """The seven outputs: status, aligned crop, reconstruction, edited face, before/after, command, downloads.
    progress: Gradio's, told each tuning step; client: the browser session, whose own files are returned;
    fresh: a new upload (a session dropped while idle starts again without being told)."""
    import gradio as gr

    if not photo:
        return ("Upload a photo to start.", None, None, None, None, "", None)

    def tuning(step: int, total: int, lpips: float) -> None:
        if progress is not None:
            progress((step, total), desc=f"Tuning the generator to face {index}: LPIPS {lpips:.3f}", unit="steps")

    try:
        with session.visit(client, fresh):
            upload = session.open(uploaded(photo, uploads), getattr(photo, "orig_name", None))
            inverted = session.invert(upload, index, encoder, tuning)
            out = session.render(inverted, strengths, paste, blend or "feather", keep or [], save, client)
    except SessionNotice as exc:
        return (f"**{exc}**", None, None, None, None, "", None)
    except StyleCliError as exc:
        return (f"**Error:** {exc}", None, None, None, None, "", None)
    except Exception as exc:  # the page stays up; the server's log has the traceback
        log.exception("edit failed")
        return (f"**Error:** {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
                None, None, None, None, "", None)
    n = len(upload.faces)
    faces = f"{n} faces, editing face {index}" + (" (the largest)" if index == 0 else "") if n > 1 else "1 face"
    said = upload.notes + inverted.notes + out.notes
    notes = f" ({'; '.join(said)})" if said else ""
    how = f", {inverted.choice.name}" if len(session.encoders) > 1 else ""
    status = f"{upload.name}: {upload.size[0]}x{upload.size[1]}, {faces}{how}{notes}."
    compare = (str(out.before), str(out.after))
    if not save:  # the page's previews put the divider through the face; the API returns plain values
        compare = gr.ImageSlider(value=compare, slider_position=out.split)
    return (status, inverted.crop, inverted.reconstruction, out.image, compare, out.command,
            [str(p) for p in out.files] or None)


def uploaded(photo: str, folder: Path) -> Path:
    """Only files the web server received as uploads (in `folder`) are opened, never another path a request
    names."""
    from stylecli.errors import InputError

    path = Path(photo).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InputError(f"{path.name}: not an uploaded file")
    return path
