"""Data: audio decode/encode/resample (audio), files and CSV manifests (files), the synthetic corpus
(synth), shard build/inspect/verify (shards), the streaming loader (stream), crop positions (crops) and
the per-objective view sampling driver (views), wrapped for Lightning by datamodule."""
