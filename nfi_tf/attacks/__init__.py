"""The attack core: one threat model, one interface, every attack the project runs.

    threat.py  ThreatModel (norm, eps, step) and the projections
    losses.py  attack objectives: CE, CW margin, TRADES' KL, AutoAttack's DLR and targeted DLR
    base.py    Target (gradient logits + the judged output), Attack.run(x, y, seed), seeds
    pgd_linf.py  `pgd`: L-inf PGD, CleverHans inside (training's attack; evaluation's PGD, CW)
    pgd_judged.py  JudgedPGD: PGD on any objective, every iterate judged by the served output
    apgd.py    APGD-CE and APGD-T as AutoAttack publishes them (native TF)
    fab.py     FAB-T (native TF)
    square.py  Square, gradient-free (any images -> logits callable: Keras or ONNX Runtime)
"""

from nfi_tf.attacks.apgd import APGD
from nfi_tf.attacks.base import Attack, Target
from nfi_tf.attacks.fab import FABTargeted
from nfi_tf.attacks.losses import (
    agreement_loss_fn,
    ce_loss_fn,
    cw_loss_fn,
    dlr_loss_fn,
    kl_loss_fn,
    margin_loss_fn,
    targeted_dlr_loss_fn,
)
from nfi_tf.attacks.pgd_judged import JudgedPGD
from nfi_tf.attacks.pgd_linf import RANDOM_STARTS, pgd
from nfi_tf.attacks.square import Square, keras_query
from nfi_tf.attacks.threat import ThreatModel

__all__ = ["APGD", "RANDOM_STARTS", "Attack", "FABTargeted", "JudgedPGD", "Square", "Target",
           "ThreatModel", "agreement_loss_fn", "ce_loss_fn", "cw_loss_fn", "dlr_loss_fn",
           "keras_query", "kl_loss_fn", "margin_loss_fn", "pgd", "targeted_dlr_loss_fn"]
