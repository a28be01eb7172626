"""What LARS does as the batch grows: studies on digits and Fashion-MNIST.

Run them with `python -m official_ext.studies.large_batch.study`.
"""
