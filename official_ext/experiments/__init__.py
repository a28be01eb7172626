"""official_ext's registered experiments and tasks; importing registers them."""
from official_ext.experiments import lars_digits  # pylint: disable=unused-import
