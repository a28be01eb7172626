"""What LARS does as the batch grows: a study on scikit-learn's digits.

Run it with `python -m official_ext.studies.large_batch.study`.
"""
