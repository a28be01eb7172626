"""Every LARS option, declared once, and its validation.

Framework-neutral: nothing here imports TensorFlow or Keras.
"""

# `trust_ratio_denominator` values: ‖g + λw‖ (Model Garden, optax) or
# ‖g‖ + λ‖w‖ (the paper, MLPerf, Apex LARC, timm).
MODEL_GARDEN_DENOMINATOR = 'model_garden'
PAPER_DENOMINATOR = 'paper'
TRUST_RATIO_DENOMINATORS = (MODEL_GARDEN_DENOMINATOR, PAPER_DENOMINATOR)
