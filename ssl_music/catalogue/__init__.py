"""The catalogue: a checkpoint's embeddings of a whole collection, built in resumable parts, and search by example.

    blocks.py   a file as blocks of back-to-back crops, read by seeking: memory flat in file length
    store.py    the index on disk: per-batch parts (Parquet metadata + .npy vectors), merge, open, digest
    build.py    index build: inputs -> batches of files -> committed parts; resume; follow the folder; --part i/N
    search.py   queries (file, track id, time range), exact cosine search, tempo translation
    page.py     the self-contained HTML page of a search (audio excerpts, spectrogram thumbnails)
"""
