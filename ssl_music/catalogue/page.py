"""The page of a search: one self-contained HTML file (no network, no scripts) to listen to the answer.

Each row holds the excerpt that matched (the query's range; each neighbour's best crop with ``CONTEXT_S``
seconds either side, so a listener hears the passage, not a 3 s snippet) as a base64 WAV in an <audio>
player, a log-spectrogram thumbnail with a time axis in seconds of the file and the matching crop shaded
(base64 PNG), the similarity, and the command that made the page. Everything is embedded, so the page plays
from anywhere, without the music beside it. Excerpts are read by seeking (``blocks.read_excerpt``): the same
samples the index embedded.
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
CONTEXT_S = 3.0      # seconds of a neighbour's file played before and after its matching crop


def wav_base64(x: np.ndarray, sample_rate: int) -> str:
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), int(sample_rate), format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


def thumbnail_base64(x: np.ndarray, sample_rate: int, t0: float = 0.0,
                     mark: tuple[float, float] | None = None) -> str:
    """A 320 x 100 px log-magnitude spectrogram as PNG, its time axis in seconds of the file (the excerpt
    starts at ``t0``), the span ``mark`` (file seconds, the matching crop) outlined."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from scipy.signal import stft

    _, _, z = stft(x, fs=sample_rate, nperseg=512, noverlap=384)
    db = 20 * np.log10(np.abs(z) + 1e-6)
    fig = plt.figure(figsize=(3.2, 1.0), dpi=100)
    ax = fig.add_axes((0.02, 0.27, 0.96, 0.71))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
              extent=(t0, t0 + len(x) / sample_rate, 0, sample_rate / 2))
    if mark is not None:
        ax.axvspan(*mark, fill=False, edgecolor="white", linewidth=1.2)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=7, pad=1, length=2)
    ax.set_xlabel("s", fontsize=7, labelpad=0, loc="right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _excerpt_cell(source: str, start_s: float, seconds: float, sample_rate: int,
                  mark: tuple[float, float] | None = None) -> tuple[str, str]:
    try:
        x = read_excerpt(source, sample_rate, start_s, seconds)
    except AudioError as exc:
        return f'<span class="err">{html.escape(str(exc))}</span>', ""
    match = f' data-match-s="{mark[0]:.3f}"' if mark else ""
    audio = (f'<audio controls preload="auto" data-start-s="{start_s:.3f}" data-seconds="{len(x) / sample_rate:.3f}"'
             f'{match} src="data:audio/wav;base64,{wav_base64(x, sample_rate)}"></audio>')
    img = (f'<img alt="spectrogram, seconds {start_s:.1f} to {start_s + len(x) / sample_rate:.1f}" '
           f'src="data:image/png;base64,{thumbnail_base64(x, sample_rate, start_s, mark)}">')
    return audio, img


def hit_excerpt(hit, cat) -> tuple[float, float]:
    """(start s in the hit's source, seconds) of what its player holds: the matching crop and up to
    CONTEXT_S either side, within the file (a shard member's end is not known here: zero-padded past it)."""
    crop_s = float(cat.meta["crop_s"])
    start = max(0.0, hit.source_start_s - CONTEXT_S)
    end = hit.source_start_s + crop_s + CONTEXT_S
    if hit.source == hit.path:   # a plain file: its duration is in the index
        row = cat.track_row(hit.track_id)
        end = min(end, max(float(cat.tracks.column("duration_s")[row].as_py()), hit.source_start_s + crop_s))
    return start, end - start


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
        start, seconds = hit_excerpt(h, cat)
        audio, img = _excerpt_cell(h.source, start, seconds, sr, (h.source_start_s, h.source_start_s + crop_s))
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
each track's best crop; the player holds that crop with up to {CONTEXT_S:g} s either side (outlined on the
spectrogram, whose axis is seconds of the file).</p>
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
