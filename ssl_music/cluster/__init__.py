"""Cluster: SLURM job templates and submission (slurm), ablation sweeps as local runs or job arrays (sweep)."""
