"""Where images come from: the registered data sources, and what the library reads of them.

A source is one module holding a `registry.SourceSpec` and one `registry.register` line below
(`registry.py` says what a spec declares; `data_source.py` what an opened source answers):

    tfds_source.py   a tensorflow-datasets name (the fallback: any value no other source claims)
    npz.py           PATH.npz or npz:PATH (arrays x, y; `array_source.py` serves the rows)
    folder.py        folder:PATH or a bare directory (one subfolder of images per class)

Around them, one concept each: `splits.py` (the logical splits train/test, the training and
validation slices), `train_stream.py` (deterministic, resumable training epochs), `eval_data.py`
(the first N images of a split, in memory), `info.py` (`DatasetInfo`, the split note),
`pixels.py` (uint8 -> [0, 1], resizing), `cache.py` (MNIST's and CIFAR-10's memory-mapped
split), `probe.py` (the image shape a derived preset reads). `nfi_tf.data` is their facade.

Registration order is the order bare values are claimed in: PATH.npz before a directory.
"""

from nfi_tf.datasets import folder, npz, registry, tfds_source

registry.register(tfds_source.SPEC)
registry.register(npz.SPEC)
registry.register(folder.SPEC)
