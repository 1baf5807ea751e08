"""The attack core: one threat model, one interface, every attack the project runs.

    threat.py  ThreatModel (norm, eps, step) and the projections
    losses.py  attack objectives: CE, CW margin, TRADES' KL, AutoAttack's DLR and targeted DLR
    seeds.py   the one seed scheme: stateless tf keys, numpy generators, the evaluation's int_seed
    base.py    Target (gradient logits + the judged output), Attack.run(x, y, seed)
    pgd_core.py  the one PGD (CleverHans' loop, seeded start, optional judge): `PGD`, and `pgd`,
               L-inf PGD on a loss of logits (training's attack, the per-epoch check, the
               evaluation's PGD and CW on one output)
    pgd_judged.py  JudgedPGD: the core on any objective, every iterate judged by the served output
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
from nfi_tf.attacks.pgd_core import PGD, RANDOM_STARTS, pgd
from nfi_tf.attacks.pgd_judged import JudgedPGD
from nfi_tf.attacks.square import Square, keras_query
from nfi_tf.attacks.threat import ThreatModel

__all__ = ["APGD", "PGD", "RANDOM_STARTS", "Attack", "FABTargeted", "JudgedPGD", "Square", "Target",
           "ThreatModel", "agreement_loss_fn", "ce_loss_fn", "cw_loss_fn", "dlr_loss_fn",
           "keras_query", "kl_loss_fn", "margin_loss_fn", "pgd", "targeted_dlr_loss_fn"]
