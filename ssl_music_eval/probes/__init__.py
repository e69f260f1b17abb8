"""What a frozen embedding is scored with: linear / MLP probes (``linear_probe``), k-NN (``knn``) and
neighbourhood locality (``locality``)."""
