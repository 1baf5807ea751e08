"""Where images come from: the registered data sources, and what the library reads of them.

A source is one module holding a `registry.SourceSpec` and one `registry.register` line below
(`registry.py` says what a spec declares; `data_source.py` what an opened source answers):

    tfds_source.py   a tensorflow-datasets name (the fallback: any value no other source claims)
    folder.py        folder:PATH or a bare directory (one subfolder of images per class)
    npz.py           PATH.npz or npz:PATH (arrays x, y; `array_source.py` serves the rows)

Around them, one concept each: `splits.py` (the logical splits train/test and their slices),
`info.py` (`DatasetInfo`, the split note, the training and validation slices of a config),
`train_stream.py` (deterministic, resumable training epochs), `eval_data.py` (the first N
images of a split, in memory),
`pixels.py` (uint8 -> [0, 1], resizing), `cache.py` (MNIST's and CIFAR-10's memory-mapped
split), `probe.py` (the image shape a derived preset reads). `nfi_tf.data` is their facade.

Bare values are claimed by the latest registered source first: PATH.npz before a directory.
"""

from nfi_tf.datasets import folder, npz, registry, tfds_source

registry.register(tfds_source.SPEC)
registry.register(folder.SPEC)
registry.register(npz.SPEC)
