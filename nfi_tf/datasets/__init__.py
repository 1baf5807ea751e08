"""Where images come from: a tfds name, a class-per-folder directory or an .npz file.

These modules work on plain values (a dataset string, a path, an image size), never on the
config, so `nfi_tf.config` can ask them for a dataset's image shape when it derives a preset.
`nfi_tf.data` puts them behind one DataConfig-facing API.
"""
