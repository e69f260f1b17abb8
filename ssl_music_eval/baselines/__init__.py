"""The references a model is compared with that need no training: MFCC+chroma features (``features``)."""
