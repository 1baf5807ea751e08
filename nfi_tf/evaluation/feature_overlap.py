"""Figure 1 (right): how many top-k feature dims an attacked image shares with each class.

The contribution of feature dim i to class c for an image x is f_i(x) * W_t[i, c] (the
trade-off head's kernel: its logit for c is the sum of these plus the bias). For each class c
the clean images of that class give a reference set, the top-k dims of their mean contribution
to c. For an image x and each class c, its own top-k dims by contribution to c are compared
with that reference set: the overlap is a count in [0, k].

Three matrices, [row group][class c] = mean overlap:
- `clean_by_true_class`: clean images grouped by their label (the diagonal is the baseline);
- `attacked_by_true_class`: attacked images grouped by their label;
- `attacked_by_adversarial_class`: attacked images that fooled the trade-off head, grouped by
  the class they were pushed to (the paper's reading: they now share the target class's dims).
"""

from __future__ import annotations

import numpy as np

from nfi_tf import io_utils

_CHUNK = 256


def _top_dims(contrib: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries along the last axis (unordered)."""
    return np.argpartition(-contrib, k - 1, axis=-1)[..., :k]


def class_reference_dims(features: np.ndarray, labels: np.ndarray, kernel: np.ndarray,
                         k: int) -> np.ndarray:
    """[C, D] boolean: the top-k dims of each class's mean contribution on its clean images."""
    dims, classes = kernel.shape
    ref = np.zeros((classes, dims), dtype=bool)
    for c in range(classes):
        own = features[labels == c]
        if len(own) == 0:
            continue
        ref[c, _top_dims(own.mean(axis=0) * kernel[:, c], k)] = True
    return ref


def overlaps(features: np.ndarray, kernel: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """[N, C] ints: per image and class c, |top-k dims by contribution to c ∩ reference[c]|."""
    n, classes = len(features), kernel.shape[1]
    out = np.zeros((n, classes), dtype=np.int32)
    for start in range(0, n, _CHUNK):
        f = features[start:start + _CHUNK]
        contrib = np.transpose(f[:, :, None] * kernel[None], (0, 2, 1))  # [b, C, D]
        top = _top_dims(contrib, k)  # [b, C, k]
        out[start:start + len(f)] = np.take_along_axis(
            np.broadcast_to(reference[None], (len(f),) + reference.shape), top, axis=2).sum(axis=2)
    return out


def _grouped_mean(values: np.ndarray, groups: np.ndarray, num_groups: int) -> list:
    rows = []
    for g in range(num_groups):
        sel = values[groups == g]
        rows.append(sel.mean(axis=0).tolist() if len(sel) else [None] * values.shape[1])
    return rows


def analyse(clean_features: np.ndarray, labels: np.ndarray, adv_features: np.ndarray,
            adv_predictions: np.ndarray, kernel: np.ndarray, k: int, class_names) -> dict:
    """The three matrices and summary means (see the module docstring)."""
    classes = kernel.shape[1]
    k = min(int(k), kernel.shape[0])
    ref = class_reference_dims(clean_features, labels, kernel, k)
    clean = overlaps(clean_features, kernel, ref, k)
    adv = overlaps(adv_features, kernel, ref, k)
    idx = np.arange(len(labels))
    fooled = adv_predictions != labels
    other = np.ones_like(adv, dtype=bool)
    other[idx, labels] = False
    if fooled.any():
        other[idx[fooled], adv_predictions[fooled]] = False

    def mean(a):
        return float(a.mean()) if a.size else None

    return {
        "k": k,
        "class_names": list(class_names),
        "examples": int(len(labels)),
        "fooled": int(fooled.sum()),
        "clean_by_true_class": _grouped_mean(clean, labels, classes),
        "attacked_by_true_class": _grouped_mean(adv, labels, classes),
        "attacked_by_adversarial_class": _grouped_mean(adv[fooled], adv_predictions[fooled], classes),
        "summary": {
            "clean_with_true_class": mean(clean[idx, labels]),
            "attacked_with_true_class": mean(adv[idx, labels]),
            "fooled_with_true_class": mean(adv[idx[fooled], labels[fooled]]),
            "fooled_with_adversarial_class": mean(adv[idx[fooled], adv_predictions[fooled]]),
            "attacked_with_other_classes": mean(adv[other]),
        },
    }


def save(result: dict, json_path: str, png_path: str, title: str = "") -> None:
    """The analysis as JSON and a heatmap PNG (clean | attacked, grouped by adversarial class)."""
    io_utils.atomic_write_json(json_path, result)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result["class_names"]
    panels = (("clean images, by true class", result["clean_by_true_class"], "true class"),
              ("attacked images that fooled the trade-off head,\nby adversarial class",
               result["attacked_by_adversarial_class"], "adversarial class"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, (panel_title, matrix, ylabel) in zip(axes, panels):
        m = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
        im = ax.imshow(m, vmin=0, vmax=result["k"], cmap="viridis")
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel("class c (its clean top-k dims)")
        ax.set_ylabel(ylabel)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, label=f"shared dims of top {result['k']}")
    fig.suptitle(title or "Top-k feature dims shared with each class (Figure 1, right)", fontsize=10)
    fig.tight_layout()
    with io_utils.atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
