"""TensorFlow's side of training."""
