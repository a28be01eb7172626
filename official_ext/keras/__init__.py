"""LARS for Keras 3 (`import keras`), on the TensorFlow, JAX and PyTorch backends.

    import keras
    from official_ext.keras import LARS

    model.compile(optimizer=LARS(0.1, weight_decay_rate=1e-4), loss=...)
"""

from official_ext.keras.lars import LARS
from official_ext.keras.normalization import normalization_variables
from official_ext.keras.normalization import use_model

__all__ = ['LARS', 'normalization_variables', 'use_model']
