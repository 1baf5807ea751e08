"""A dataset's image shape, cheaply, for deriving a preset (`nfi_tf.config.make_config`).

Asks the source `--dataset` names (`registry.parse`) for its `image_shape`: one header read (a
folder's first image, an .npz array header, tfds' feature spec); the full checks (mixed sizes,
label ranges, empty splits) run when the data is opened (`registry.open_source`).
"""

from __future__ import annotations

from nfi_tf.datasets import registry


def preset_shape(dataset: str, data_dir: str | None = None,
                 image_size: int | None = None) -> tuple[str, registry.ImageShape]:
    """(the canonical dataset name, (height, width, channels) of its images after
    `image_size`); height and width are None for a tfds set of variable-size images."""
    spec = registry.parse(dataset)
    h, w, c = spec.source.image_shape(spec, data_dir)
    if image_size is not None:
        h = w = image_size
    return spec.name, (h, w, c)
