"""official_ext's registered experiments and tasks; importing registers them."""
# pylint: disable=unused-import
from official_ext.experiments import lars_digits
from official_ext.experiments import resnet50_imagenet_lars
