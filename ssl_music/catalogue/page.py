"""The page of a search: one self-contained HTML file (no network, no scripts) to listen to the answer.

Each row holds the excerpt that matched (the query's range, each neighbour's best crop: ``crop_s``
seconds, not the whole file) as a base64 WAV in an <audio> player, a small log-spectrogram thumbnail as
a base64 PNG, the similarity, and the command that made the page. Excerpts are read by seeking
(``blocks.read_excerpt``): the same samples the index embedded.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import soundfile as sf

from ssl_music.catalogue.blocks import read_excerpt
from ssl_music.catalogue.search import Result
from ssl_music.errors import AudioError

QUERY_MAX_S = 15.0   # a whole-track query plays its first seconds only: the page stays small


def wav_base64(x: np.ndarray, sample_rate: int) -> str:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), int(sample_rate), format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


def thumbnail_base64(x: np.ndarray, sample_rate: int) -> str:
    """A 240 x 64 px log-magnitude spectrogram, as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from scipy.signal import stft

    _, _, z = stft(x, fs=sample_rate, nperseg=512, noverlap=384)
    db = 20 * np.log10(np.abs(z) + 1e-6)
    fig = plt.figure(figsize=(2.4, 0.64), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max())
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _excerpt_cell(source: str, start_s: float, seconds: float, sample_rate: int) -> tuple[str, str]:
    try:
        x = read_excerpt(source, sample_rate, start_s, seconds)
    except AudioError as exc:
        return f'<span class="err">{html.escape(str(exc))}</span>', ""
    audio = (f'<audio controls preload="auto" data-start-s="{start_s:.3f}" data-seconds="{len(x) / sample_rate:.3f}" '
             f'src="data:audio/wav;base64,{wav_base64(x, sample_rate)}"></audio>')
    img = f'<img alt="spectrogram" src="data:image/png;base64,{thumbnail_base64(x, sample_rate)}">'
    return audio, img


def query_excerpt(result: Result, cat) -> tuple[str, float, float]:
    """(source, start s in it, seconds) of the query's audio."""
    q = result.query
    end = q.end_s if q.end_s is not None else q.start_s + QUERY_MAX_S
    seconds = min(end - q.start_s, QUERY_MAX_S)
    if q.path is not None:
        return q.path, q.start_s, seconds
    row = cat.track_row(q.track_id)
    rows = np.flatnonzero(cat.crop_track == row)
    starts = np.asarray(cat.crops.column("start_s"))[rows]
    c = int(rows[max(0, int(np.searchsorted(starts, q.start_s, side="right")) - 1)])
    src, sstart, start = (cat.crops.column(n)[c].as_py() for n in ("source", "source_start_s", "start_s"))
    return cat.locate(src), sstart + (q.start_s - start), seconds


def write_page(result: Result, cat, out: str | Path, command: str) -> Path:
    sr, crop_s = int(cat.meta["sample_rate"]), float(cat.meta["crop_s"])
    q = result.query
    src, start, seconds = query_excerpt(result, cat)
    q_audio, q_img = _excerpt_cell(src, start, seconds, sr)
    ratio = f" &middot; tempo &times;{q.tempo_ratio:g}" if q.tempo_ratio else ""
    rows = []
    for h in result.hits:
        audio, img = _excerpt_cell(h.source, h.source_start_s, crop_s, sr)
        rows.append(f'<tr class="hit"><td>{h.rank}</td><td>{html.escape(h.track_id)}</td><td>{h.start_s:.1f}</td>'
                    f'<td>{h.similarity:.4f}</td><td>{audio}</td><td>{img}</td></tr>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ssl-music search: {html.escape(q.text)}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; }}
td, th {{ padding: 0.3em 0.6em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: middle; }}
pre {{ background: #f4f4f4; padding: 0.6em; white-space: pre-wrap; }} .err {{ color: #a00; }}
</style></head><body>
<h1>Neighbours of {html.escape(q.text)}{ratio}</h1>
<p>Index <code>{html.escape(str(cat.path))}</code>: {cat.tracks.num_rows} tracks, {cat.crops.num_rows} crops of
{crop_s:g} s; checkpoint identity <code>{html.escape(cat.identity)}</code>. Cosine similarity of the query with
each track's best crop; the player holds that crop only.</p>
<table id="query"><tr><th>query</th><th>from s</th><th>audio</th><th>spectrogram</th></tr>
<tr class="query"><td>{html.escape(q.text)}</td><td>{q.start_s:.1f}</td><td>{q_audio}</td><td>{q_img}</td></tr></table>
<h2>Top {len(result.hits)}</h2>
<table id="hits">
<tr><th>rank</th><th>track</th><th>start s</th><th>similarity</th><th>audio</th><th>spectrogram</th></tr>
{chr(10).join(rows)}
</table>
<h2>Command</h2><pre id="command">{html.escape(command)}</pre>
</body></html>
"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out
