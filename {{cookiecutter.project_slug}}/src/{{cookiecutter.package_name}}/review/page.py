"""The review page: the suspects, most suspicious first, each with keep / move / remove, and one button.

    {{ cookiecutter.project_slug }} review runs/<name>                 # open http://127.0.0.1:7860
    {{ cookiecutter.project_slug }} review runs/<name> --port 8000

It listens on 127.0.0.1 only: the page shows your photos and moves your files. It shows small
thumbnails made for it in a temporary folder (removed when the page stops), never the photos
themselves, and takes no uploads. The button goes through ``changes.apply_decisions``, the same checks,
moves and log as ``review --apply``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.decode import load_rgb
from {{ cookiecutter.package_name }}.errors import UserError, shell_quote
from {{ cookiecutter.package_name }}.review.changes import apply_decisions
from {{ cookiecutter.package_name }}.review.scores import Scored
from {{ cookiecutter.package_name }}.sharing.extras import require

TITLE = "Review: photos that may be in the wrong folder"
MAX_SHOWN = 48  # suspects on the page; apply, then run review again for the next ones
THUMBNAIL = 160  # pixels
HOST = "127.0.0.1"  # this computer only


def check_options(port: int) -> None:
    """Refuse what cannot work before the photos are scored: no Gradio, a wrong --port."""
    require("gradio", "review")
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a port number; use one between 1024 and 65535, e.g. 7860.")


def make_thumbnails(root: Path, suspects: list[Scored], folder: Path) -> list[str | None]:
    """A small JPEG of each suspect in ``folder`` (None where the photo cannot be read any more)."""
    thumbnails = []
    for number, photo in enumerate(suspects):
        target = folder / f"{number:03d}.jpg"
        try:
            picture = load_rgb(root / photo.path, min_size=THUMBNAIL)
            picture.thumbnail((THUMBNAIL, THUMBNAIL))
            picture.save(target, quality=85)
            thumbnails.append(str(target))
        except (OSError, ValueError):
            thumbnails.append(None)
    return thumbnails


def build_page(root: Path, suspects: list[Scored], classes: list[str], thumbnails: list[str | None], run_name: str,
               total: int):
    """One row per suspect (thumbnail, what we know, the choice) and the button that applies the choices."""
    import gradio as gr

    more = f" The first {len(suspects)} of {total} are shown; apply, then run review again for the rest." \
        if total > len(suspects) else ""
    with gr.Blocks(title=TITLE) as page:
        gr.Markdown(f"# {TITLE}\n{total} suspect(s) in `{root}`, most suspicious first: a model that never saw "
                    f"their labels puts them in another class, or the same picture is in another class.{more} "
                    "Nothing is deleted: *remove* moves a photo to `.removed/`, and "
                    f"`{{ cookiecutter.project_slug }} review --undo {shell_quote(root)}` puts every change back.")
        if not suspects:
            gr.Markdown("**No suspects**: every label agrees with what the model sees. Nothing to do.")
        choices, targets = [], []
        for number, (photo, thumbnail) in enumerate(zip(suspects, thumbnails, strict=True)):
            others = [name for name in classes if name != photo.label]
            with gr.Row(equal_height=True, elem_id=f"suspect-{number}"):
                gr.Image(thumbnail, show_label=False, interactive=False, height=THUMBNAIL, scale=1,
                         elem_id=f"photo-{number}")
                same = "; ".join(part for part in photo.reason.split("; ") if part.startswith("duplicate"))
                gr.Markdown(f"**{Path(photo.path).name}**  \n`{photo.path}`  \nin **{photo.label}** ({photo.split}); "
                            f"the model suggests **{photo.suggested}** ({photo.probability:.0%})  \n{same}")
                choices.append(gr.Radio(["keep", "move", "remove"], value="keep", label="decision", scale=1,
                                        elem_id=f"decision-{number}"))
                targets.append(gr.Dropdown(others, label="move to", scale=1, elem_id=f"class-{number}",
                                           value=photo.suggested if photo.suggested in others else others[0]))
        button = gr.Button("Apply my choices", variant="primary", elem_id="apply", interactive=bool(suspects))
        status = gr.Markdown(elem_id="status")

        def apply(*values):
            decisions = [(photo.path, action, target) for photo, action, target
                         in zip(suspects, values[:len(suspects)], values[len(suspects):], strict=True)]
            try:
                done = apply_decisions(root, decisions, classes, run_name)
            except UserError as err:
                return f"**Stopped**: {err}", gr.Button(interactive=True)
            moved = sum(change.action == "move" for change in done)
            lines = [f"**Done**: moved {moved}, removed {len(done) - moved} (logged in `review-log.csv`). "
                     f"Undo: `{{ cookiecutter.project_slug }} review --undo {shell_quote(root)}`"]
            lines += [f"- `{change.old}` -> `{change.new}`" for change in done]
            return "\n".join(lines), gr.Button(interactive=False)  # the rows now describe files that moved

        button.click(apply, inputs=choices + targets, outputs=[status, button], api_name=False)
    return page


def serve(root: Path, suspects: list[Scored], run, port: int = 7860, block: bool = True):
    """Make the thumbnails, start the page on 127.0.0.1:``port`` and wait (Ctrl+C stops it)."""
    import json

    check_options(port)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports to Gradio's servers
    classes = json.loads(run.labels.read_text(encoding="utf-8"))
    shown = suspects[:MAX_SHOWN]
    folder = Path(tempfile.mkdtemp(prefix="review-thumbnails-"))
    thumbnails = make_thumbnails(root, shown, folder)
    # Gradio copies what a page shows into its cache, /tmp/gradio unless told otherwise: here into our
    # folder, so that no thumbnail of your photos outlives the page.
    cache, os.environ["GRADIO_TEMP_DIR"] = os.environ.get("GRADIO_TEMP_DIR"), str(folder / "gradio")
    try:
        page = build_page(root, shown, classes, thumbnails, run.path.name, len(suspects))
    finally:
        if cache is None:
            del os.environ["GRADIO_TEMP_DIR"]
        else:
            os.environ["GRADIO_TEMP_DIR"] = cache
    try:
        # No uploads on this page: Gradio's upload route gets a tiny limit. Only the thumbnails are served.
        page.launch(server_name=HOST, server_port=port, prevent_thread_lock=True, quiet=True, show_error=True,
                    max_file_size=1, allowed_paths=[str(folder)])
    except OSError as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"cannot listen on {HOST}:{port} ({err}); pass another --port, e.g. {port + 1}.") from None
    print(f"{len(suspects)} suspect(s). Open http://{HOST}:{port} in your browser to review them. Ctrl+C stops it.")
    page.thumbnails = folder
    if block:
        try:
            page.block_thread()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return page
