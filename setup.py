"""Packaging for official_ext: first-class LARS for TensorFlow Model Garden."""
import setuptools

setuptools.setup(
    name='official-ext',
    version='0.1.0',
    description=('Layer-wise Adaptive Rate Scaling (LARS) for TensorFlow '
                 'Model Garden: a drop-in, fixed and faster LARS with '
                 'configs, gin bindings and a Model Garden launcher.'),
    packages=setuptools.find_packages(include=['official_ext', 'official_ext.*']),
    python_requires='>=3.11,<3.14',
    install_requires=[
        'tensorflow~=2.20.0',
        'tf_keras~=2.20.0',
        'tf-models-official==2.20.0',
        'gin-config>=0.5.0,<0.6',
        'absl-py>=1.4.0',
        'scikit-learn>=1.3',
        'numpy',
        'matplotlib',  # the large-batch study's plot
        # Model Garden's NLP tasks, which the launcher registers, import
        # tensorflow-hub, which needs pkg_resources (gone from setuptools 81).
        'setuptools<81',
    ],
    extras_require={
        # jax: the Keras 3 LARS is tested on the JAX backend (CPU wheels).
        'test': ['pytest>=8', 'jax~=0.10.2'],
        # The Keras 3 LARS on the PyTorch backend. Not in `test`: from PyPI a
        # default torch install is a multi-GB CUDA build; for CPU only,
        # pip install torch==2.13.0 --index-url
        # https://download.pytorch.org/whl/cpu
        'torch': ['torch==2.13.0'],
        # optax's `lars` in `python -m official_ext.keras.benchmark`'s JAX
        # table; never imported by the optimizers.
        'benchmark': ['optax~=0.2.8'],
    },
)
