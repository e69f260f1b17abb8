"""The augmentation transforms: one :class:`Transform` subclass each, registered by name.

Importing this package registers the built-in transforms; the import order below is the registry's
order. A transform defined anywhere else becomes usable in chains with :func:`register_transform`.
"""
from ssl_music.augment.transforms.base import TRANSFORMS, Transform, register_transform
from ssl_music.augment.transforms import stretch, level, filters, room, byol_a  # noqa: F401  (imported to register)

__all__ = ["TRANSFORMS", "Transform", "register_transform"]
