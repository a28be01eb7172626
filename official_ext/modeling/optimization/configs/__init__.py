"""official_ext/modeling/optimization/configs."""
