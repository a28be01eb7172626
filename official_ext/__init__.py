"""official_ext: first-class LARS for TensorFlow Model Garden."""
