"""Evaluation: a checkpoint -> probe report. datasets (formats) -> embed (cached) -> linear/MLP probes,
k-NN, locality, tempo -> metrics with intervals -> report; suite runs a YAML suite end to end, monitor is
the online k-NN callback the CLI hands to pretraining. Imports the library; the library never imports it."""
