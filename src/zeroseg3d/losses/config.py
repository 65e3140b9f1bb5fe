"""Typed settings of the losses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LossConfig:
    seen: bool = True
    # "joint": one cross-entropy over the 3D labels completed with pseudo (or self) labels, a
    # pseudo (self) label counting as pseudo_weight (self_weight) 3D labels; "per_term": each
    # cross-entropy averaged over its own points and weighted (a few hundred pseudo-labelled
    # points then weigh as much as a whole scan: on the world this wrecked the seen classes)
    normalize: str = "joint"
    pseudo: bool = True
    pseudo_weight: float = 30.0        # pseudo labels are few beside a scan of 3D labels
    pseudo_threshold: float = 0.5      # teacher softmax confidence
    # "unseen": an unlabelled point's pseudo label is the teacher's most probable unseen class
    # (the 3D labels say it is no seen class), confidence renormalised over the unseen classes,
    # where they hold at least pseudo_min_mass of the probability; "all": the teacher's argmax,
    # used only when it is an unseen class. "unseen" gives the rare classes labels "all" leaves
    # them without (traffic signs, docs/results.md)
    pseudo_among: str = "unseen"
    pseudo_min_mass: float = 0.1
    # pseudo_among=unseen: each unseen class's probability is first divided by its mean over the
    # unlabelled points of the training frames to this power (teacher.cache.class_prior): the
    # teacher's favourite unseen class (truck) otherwise takes the points of the rare ones
    # (traffic signs); 0: off; 0.5 and above flood the rare classes (docs/results.md)
    pseudo_prior_power: float = 0.0
    # > 0: each connected group of unlabelled points (an object: points closer than this, in
    # metres) takes its teacher majority, in view or not (teacher/objects.py); 0: per point.
    # On the world, 0.5 labels 72% of the unseen points at 99.5% accuracy (docs/results.md)
    pseudo_object_radius: float = 0.5
    # each point's vote in its object counts its confidence times the teacher's probability
    # mass on the classes of pseudo_among to this power: a rider's bicycle, which the teacher
    # takes for the seen class bicycle, then votes less for the unseen class nearest to it
    # (motorcycle); 0: every vote counts its confidence alone. On the world whose teacher mixes
    # them up, 2 adds 9 points of unseen mIoU; on three others it changes few labels and moves
    # unseen mIoU by -1.5 to +1.2 (docs/results.md)
    pseudo_vote_mass_power: float = 2.0
    # true: the weights only take an object's label away, never give it another (the label is
    # the unweighted votes' winner, its confidence the smaller of its unweighted and weighted
    # shares); false: the weighted votes' winner and share. Over four worlds the 12 students
    # gain 1.0 to 8.2 unseen mIoU per world with it (docs/results.md)
    pseudo_vote_agree: bool = True
    # in frames without any 3D label (annotation-free) nothing separates objects from the ground
    # they stand on but geometry: points this close (metres) to the local ground keep their own
    # labels and the rest vote as objects (teacher/objects.py); 0: no objects in such frames
    pseudo_object_ground: float = 0.2
    # -log P(any unseen class) on every point the 3D labels leave unlabelled (they are none of
    # the seen classes), over the whole scan. Off: on the world it raises unseen recall but
    # moves as many seen points into unseen classes (docs/results.md)
    unseen_mass_weight: float = 0.0
    mcfa_global: bool = True
    global_weight: float = 0.5
    global_temperature: float = 0.1
    mcfa_local: bool = True
    local_weight: float = 0.5
    local_temperature: float = 0.1
    local_max_patches: int = 1024
    self_weight: float = 1.0           # self-training cross-entropy (phase 2)
    # Lovasz-softmax over the same completed labels (Pointcept's SemanticKITTI recipe pairs it
    # with cross-entropy): it optimises per-class IoU, which lifts the small classes
    lovasz_weight: float = 1.0
    lovasz_max_points: int = 30000     # a random subset of the supervised points (0: all of them)

    @property
    def uses_teacher(self) -> bool:
        """Whether a term reads the teacher's per-frame outputs (its pseudo labels, its pixels'
        features); without them training needs no teacher cache (the text embeddings still
        come from CLIP's text tower)."""
        return self.pseudo or self.mcfa_global or self.mcfa_local

    def __post_init__(self) -> None:
        from zeroseg3d.errors import ConfigError

        if self.normalize not in ("joint", "per_term"):
            raise ConfigError(f"loss.normalize must be 'joint' or 'per_term', not {self.normalize!r}")
        if self.pseudo_among not in ("unseen", "all"):
            raise ConfigError(f"loss.pseudo_among must be 'unseen' or 'all', not {self.pseudo_among!r}")
        if self.pseudo_object_radius < 0:
            raise ConfigError(f"loss.pseudo_object_radius must be >= 0, not {self.pseudo_object_radius}")
        if not 0.0 <= self.pseudo_vote_mass_power <= 4.0:
            raise ConfigError(f"loss.pseudo_vote_mass_power must be in [0, 4], not {self.pseudo_vote_mass_power}")
        if not 0.0 <= self.pseudo_prior_power <= 1.0:
            raise ConfigError(f"loss.pseudo_prior_power must be in [0, 1], not {self.pseudo_prior_power}")
        if self.pseudo_object_ground < 0:
            raise ConfigError(f"loss.pseudo_object_ground must be >= 0, not {self.pseudo_object_ground}")
        if not 0.0 <= self.pseudo_min_mass <= 1.0:
            raise ConfigError(f"loss.pseudo_min_mass must be in [0, 1], not {self.pseudo_min_mass}")
        if not 0.0 <= self.pseudo_threshold <= 1.0:
            raise ConfigError(f"loss.pseudo_threshold must be in [0, 1], not {self.pseudo_threshold}")
        for name in ("pseudo_weight", "global_weight", "local_weight", "self_weight", "lovasz_weight",
                     "unseen_mass_weight", "lovasz_max_points"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must be >= 0, not {getattr(self, name)}")
        for name in ("global_temperature", "local_temperature", "local_max_patches"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"loss.{name} must be > 0, not {getattr(self, name)}")
