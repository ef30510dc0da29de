"""Scales, stimulus names and the trial/voxel design of the synthetic LAION-fMRI dataset.

Everything here is bookkeeping (which image, which session, which voxel), no responses: the
full-scale design of all five subjects builds in well under a second, so tests can check the real
counts of the dataset (SPEC sections 1-2) without generating a single beta.

Randomness: every piece draws from its own stream, ``stream(seed, "<purpose>", <subject>, ...)``,
a :class:`numpy.random.SeedSequence` keyed by the purpose, so building one subject never depends
on having built another, and the same seed gives bit-identical output.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from storage_schemas.vocabulary import OOD_CATEGORIES, OOD_COUNTS, SUBJECTS
from storage_schemas.vocabulary import SUBJECT_PARTICIPANT_CODE as PARTICIPANT_CODE

UNIQUE_LAION_KINDS = {"initial": 3166, "fillup": 725, "new": 355}  # the real split of the 4,246 unique LAION images
SHARED_12REP = 12
SHARED_4REP = 4
UNIQUE_REPEATS = 4


def stream(seed: int, *key: str | int) -> np.random.Generator:
    """An independent random stream for ``key`` (e.g. ``("trials", "sub-01")``) under ``seed``."""
    spawn_key = tuple(zlib.crc32(str(part).encode()) for part in key)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=spawn_key))


@dataclass(frozen=True)
class Scale:
    """Counts of one scale of the synthetic dataset.

    Attributes
    ----------
    name : str
    shared_12rep : dict source -> n images shown 12x to every subject (LAION, THINGS+)
    shared_nsd : int
        ``shared_4rep_NSD_special1000_*`` images (4x).
    ood : dict category -> n images (4x, shared)
    unique : dict source -> n images per subject (4x, one subject only)
    n_sessions, runs_per_session : int
        Sessions are numbered 1..n_sessions (the held-out 31-34 never appear).
    lost_repeats : int
        Trials dropped per subject (half from 12x images: 12 -> 11, half from 4x: 4 -> 3).
    paired_visit_probability : float
        Chance that two presentations of an image fall in the same session (sets images per session).
    voxels : dict region -> nominal voxel count (each subject varies by ~5 %)
    feature_width : dict model -> number of features
    """

    name: str
    shared_12rep: dict[str, int]
    shared_nsd: int
    ood: dict[str, int]
    unique: dict[str, int]
    n_sessions: int
    runs_per_session: int
    lost_repeats: int
    voxels: dict[str, int]
    feature_width: dict[str, int]
    paired_visit_probability: float = 0.55
    voxel_count_jitter: float = 0.05

    @property
    def n_shared_non_ood(self) -> int:
        return sum(self.shared_12rep.values()) + self.shared_nsd

    @property
    def n_ood(self) -> int:
        return sum(self.ood.values())

    @property
    def n_shared(self) -> int:
        return self.n_shared_non_ood + self.n_ood

    @property
    def n_unique(self) -> int:
        return sum(self.unique.values())

    @property
    def nominal_trials(self) -> int:
        """Presentations per subject before the lost repeats."""
        return (
            SHARED_12REP * sum(self.shared_12rep.values())
            + SHARED_4REP * (self.shared_nsd + self.n_ood)
            + UNIQUE_REPEATS * self.n_unique
        )


SCALES: dict[str, Scale] = {
    "full": Scale(
        name="full",
        shared_12rep={"LAION": 641, "THINGS+": 240},
        shared_nsd=240,
        ood=dict(OOD_COUNTS),
        unique={"LAION": 4246, "THINGS+": 322, "THINGS": 144},
        n_sessions=30,
        runs_per_session=10,
        lost_repeats=8,
        voxels={"V1": 1700, "V2": 1600, "V3": 1300, "V4": 700, "IT": 2400},
        feature_width={"early_model": 4096, "late_model": 4096, "random_model": 4096},
    ),
    "small": Scale(
        name="small",
        shared_12rep={"LAION": 80, "THINGS+": 30},
        shared_nsd=30,
        ood={"shape": 10, "relations": 9, "unusual": 8, "cropped": 8, "selfmade": 4, "gaudy": 3,
             "illusion-classic": 3, "gabor": 3, "illusion-natural": 3},  # fmt: skip
        unique={"LAION": 531, "THINGS+": 40, "THINGS": 18},
        n_sessions=8,
        runs_per_session=6,
        lost_repeats=4,
        voxels={"V1": 212, "V2": 200, "V3": 162, "V4": 88, "IT": 300},
        feature_width={"early_model": 1024, "late_model": 1024, "random_model": 512},
    ),
    "tiny": Scale(
        name="tiny",
        shared_12rep={"LAION": 50, "THINGS+": 20},
        shared_nsd=50,
        ood={category: 3 for category in OOD_COUNTS},
        unique={"LAION": 120, "THINGS+": 20, "THINGS": 10},
        n_sessions=4,
        runs_per_session=4,
        lost_repeats=4,
        voxels={"V1": 40, "V2": 40, "V3": 40, "V4": 40, "IT": 40},
        feature_width={"early_model": 256, "late_model": 256, "random_model": 128},
    ),
}


def get_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}") from None


# -- stimulus names ----------------------------------------------------------------------------
_NOUNS = (
    "aardvark", "acorn", "air_pump", "aloe", "altar", "anchor", "apple", "axe", "bagel", "balloon", "bamboo",
    "banjo", "barrel", "bathtub", "beaver", "bench", "bicycle", "boot", "bowl", "bracelet", "broom", "bucket",
    "cactus", "camel", "camera", "candle", "canoe", "carrot", "cello", "chair", "cherry", "clock", "coconut",
    "crowbar", "cup", "daisy", "desk", "dolphin", "donkey", "drum", "easel", "eggplant", "exerciser", "feather",
    "fence", "flamingo", "footrest", "fork", "gazebo", "giraffe", "glove", "golf_ball", "guitar", "hammer",
    "harp", "hedgehog", "helmet", "hot-water_bottle", "iguana", "jar", "kayak", "kettle", "kite", "ladder",
    "lamp", "lemon", "lettuce", "lobster", "magnifying_glass", "mailbox", "mango", "mitten", "mullet", "nail_file",
    "necklace", "octopus", "onion", "owl", "pacifier", "paddle", "pepper", "piano", "piggy_bank", "pineapple",
    "poinsettia", "pumpkin", "rake", "robot", "sail", "saxophone", "scarf", "shovel", "skateboard", "sled",
    "smoke_alarm", "spoon", "stool", "teapot", "tractor", "tree_stump", "trumpet", "umbrella", "vase", "violin",
    "walrus", "wedding_cake", "whisk", "yak", "zebra", "zucchini",
)  # fmt: skip
_GABOR_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center", "radial", "vertical", "horizontal")
_RELATIONS = ("ontop", "under", "inside", "between", "next-to", "behind", "into")


def vocabulary_word(index: int) -> str:
    """The ``index``-th word of an unbounded vocabulary (``bracelet``, ..., ``bracelet2``, ...)."""
    word = _NOUNS[index % len(_NOUNS)]
    return word if index < len(_NOUNS) else f"{word}{index // len(_NOUNS) + 1}"


def _ood_name(category: str, i: int, word: str, rng: np.random.Generator) -> str:
    """File name (after ``shared_4rep_OOD_``) of the i-th image of an OOD category, release-like."""
    if category == "shape":
        kind = i % 4
        if kind == 0:
            return f"shape_blob_round-{i:02d}.png"
        if kind == 1:
            return f"shape_blob_spiky-{i:02d}.png"
        if kind == 2:
            return f"shape_deeprecon_digit-{i}.png"
        return f"shape_color_simple_shapes_{i}-simple-combined.jpg"
    if category == "relations":
        other = vocabulary_word(int(rng.integers(len(_NOUNS))))
        return f"relations_{3 * i + 7:03d}_{word}-{_RELATIONS[i % len(_RELATIONS)]}-{other}_{i % 4 + 1:02d}.jpg"
    if category == "unusual":
        # a few real names carry spaces and dots (screenshots): keep some to exercise string handling
        if i % 8 == 0:
            return f"unusual_Screenshot 2024-05-06 at 14.{i // 60:02d}.{i % 60:02d}.jpg"
        return f"unusual_{word}-glitch-{i}.jpg"
    if category == "cropped":
        return f"cropped_{word}.png"
    if category == "selfmade":
        return f"selfmade_{i + 1:02d}.jpg"
    if category == "gaudy":
        return f"gaudy_gaudy-{word}.jpg"
    if category == "illusion-classic":
        return f"illusion-classic_classic-illusion-{i // 3 + 1:02d}-{word}{('', 'control', 'positive')[i % 3]}.png"
    if category == "gabor":
        return f"gabor_gabor-{i + 1:02d}-{_GABOR_POSITIONS[i % len(_GABOR_POSITIONS)]}.jpg"
    if category == "illusion-natural":
        return f"illusion-natural_{word.replace('_', '-')}-glitch.jpg"
    raise ValueError(f"unknown OOD category {category!r}")


@dataclass(frozen=True)
class StimulusSet:
    """Images in generation order (not sorted), with what their names encode.

    Attributes
    ----------
    stimulus_id, source, ood_category, owner : arrays of str, shape (n,)
    shared : bool array, design_repeats : int16 array
    """

    stimulus_id: np.ndarray
    source: np.ndarray
    ood_category: np.ndarray
    owner: np.ndarray
    shared: np.ndarray
    design_repeats: np.ndarray

    def __len__(self) -> int:
        return len(self.stimulus_id)

    @staticmethod
    def concatenate(parts: list[StimulusSet]) -> StimulusSet:
        return StimulusSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in StimulusSet.__dataclass_fields__))


def _stimulus_set(ids: list[str], source: list[str], category: list[str], owner: str, repeats: list[int]) -> StimulusSet:
    n = len(ids)
    return StimulusSet(
        stimulus_id=np.asarray(ids, dtype=str),
        source=np.asarray(source, dtype=str),
        ood_category=np.asarray(category, dtype=str) if n else np.zeros(0, str),
        owner=np.full(n, owner, dtype=object).astype(str),
        shared=np.full(n, owner == ""),
        design_repeats=np.asarray(repeats, dtype=np.int16),
    )


def _unique_codes(rng: np.random.Generator, n: int, n_clusters: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct (cluster, item) pairs, as LAION file names number them."""
    codes = rng.choice(n_clusters * n_items, size=n, replace=False)
    return codes // n_items, codes % n_items


def shared_stimuli(scale: str | Scale, seed: int) -> StimulusSet:
    """The shared images (every subject sees them), in generation order: 12x LAION, 12x THINGS+, NSD, OOD."""
    scale = get_scale(scale)
    rng = stream(seed, "names", "shared")
    ids, source, category, repeats = [], [], [], []
    n_laion = scale.shared_12rep.get("LAION", 0)
    clusters, items = _unique_codes(rng, n_laion, 6000, 3)
    ids += [f"shared_12rep_LAION_cluster_{c}_i{i}.jpg" for c, i in zip(clusters, items)]
    source += ["LAION"] * n_laion
    n_things = scale.shared_12rep.get("THINGS+", 0)
    words = rng.permutation(max(n_things, len(_NOUNS)))[:n_things]
    ids += [f"shared_12rep_THINGS+_kmeans_{k}_{vocabulary_word(int(w))}.jpg" for k, w in enumerate(words)]
    source += ["THINGS+"] * n_things
    repeats += [SHARED_12REP] * (n_laion + n_things)
    nsd = np.sort(rng.choice(1000, size=scale.shared_nsd, replace=False))
    ids += [f"shared_4rep_NSD_special1000_{n}.jpg" for n in nsd]
    source += ["NSD"] * scale.shared_nsd
    repeats += [SHARED_4REP] * scale.shared_nsd
    category += [""] * len(ids)
    for name, count in scale.ood.items():
        words = rng.permutation(max(count, len(_NOUNS)))[:count]
        ids += [f"shared_4rep_OOD_{_ood_name(name, i, vocabulary_word(int(w)), rng)}" for i, w in enumerate(words)]
        source += ["OOD"] * count
        category += [name] * count
        repeats += [SHARED_4REP] * count
    return _stimulus_set(ids, source, category, "", repeats)


def unique_stimuli(scale: str | Scale, seed: int, subject: str) -> StimulusSet:
    """The images only ``subject`` sees (4x each), in generation order: LAION, THINGS+, THINGS."""
    scale = get_scale(scale)
    if subject not in PARTICIPANT_CODE:
        raise ValueError(f"unknown subject {subject!r}; choose one of {SUBJECTS}")
    code = PARTICIPANT_CODE[subject]
    rng = stream(seed, "names", subject)
    ids, source = [], []
    n_laion = scale.unique.get("LAION", 0)
    total_real = sum(UNIQUE_LAION_KINDS.values())
    counts = {kind: int(round(n_laion * n / total_real)) for kind, n in UNIQUE_LAION_KINDS.items()}
    counts["initial"] += n_laion - sum(counts.values())
    for kind, (n_clusters, n_items) in zip(UNIQUE_LAION_KINDS, ((5600, 10), (1200, 50), (450, 40))):
        clusters, items = _unique_codes(rng, counts[kind], n_clusters, n_items)
        ids += [f"unique_LAION_{kind}_cluster_{c}_i{i}_{code}.jpg" for c, i in zip(clusters, items)]
    source += ["LAION"] * n_laion
    for name in ("THINGS+", "THINGS"):
        n = scale.unique.get(name, 0)
        words = rng.permutation(max(n, 4 * len(_NOUNS)))[:n]
        ids += [f"unique_{name}_{vocabulary_word(int(w))}_{code}.jpg" for w in words]
        source += [name] * n
    return _stimulus_set(ids, source, [""] * len(ids), subject, [UNIQUE_REPEATS] * len(ids))


def subject_stimuli(scale: str | Scale, seed: int, subject: str) -> StimulusSet:
    """Every image ``subject`` sees: the shared ones, then the subject's unique ones."""
    return StimulusSet.concatenate([shared_stimuli(scale, seed), unique_stimuli(scale, seed, subject)])


# -- trials ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialTable:
    """One subject's presentations in chronological order (session, then beta_index).

    Attributes
    ----------
    stimuli : StimulusSet
        The subject's images (shared, then unique); ``image`` indexes it.
    image : int array (n_trials,)
    session, run, repetition : int16 arrays; beta_index : int32 array
    lost : str array
        Images that lost one presentation.
    """

    stimuli: StimulusSet
    image: np.ndarray
    session: np.ndarray
    run: np.ndarray
    beta_index: np.ndarray
    repetition: np.ndarray
    lost: np.ndarray = field(default_factory=lambda: np.zeros(0, str))

    @property
    def stimulus_id(self) -> np.ndarray:
        return self.stimuli.stimulus_id[self.image]

    @property
    def n_trials(self) -> int:
        return len(self.image)

    @property
    def n_repeats(self) -> np.ndarray:
        """Presentations of each of ``stimuli`` in the data (int16)."""
        return np.bincount(self.image, minlength=len(self.stimuli)).astype(np.int16)

    def session_bounds(self) -> np.ndarray:
        """Start of each session's trials, plus the end: session s is ``[b[i], b[i+1])``."""
        change = np.flatnonzero(np.diff(self.session)) + 1
        return np.r_[0, change, self.n_trials]


def subject_trials(scale: str | Scale, seed: int, subject: str) -> TrialTable:
    """The trial design of one subject.

    Each image's presentations are grouped into visits (two presentations in one session with
    probability ``paired_visit_probability``, else one), visits go to distinct sessions in a random
    order (cycling when an image has more visits than there are sessions), a few images lose one
    presentation, and each session's trials are shuffled and cut into runs.
    """
    scale = get_scale(scale)
    stimuli = subject_stimuli(scale, seed, subject)
    rng = stream(seed, "trials", subject)
    n_images, n_sessions = len(stimuli), scale.n_sessions
    repeats = stimuli.design_repeats.astype(np.int64)
    pairs = rng.binomial(repeats // 2, scale.paired_visit_probability)
    visits = repeats - pairs
    session_order = np.argsort(rng.random((n_images, n_sessions)), axis=1)
    visit_image = np.repeat(np.arange(n_images), visits)
    visit_number = np.arange(len(visit_image)) - np.repeat(np.cumsum(visits) - visits, visits)
    visit_session = session_order[visit_image, visit_number % n_sessions]
    visit_size = np.where(visit_number < pairs[visit_image], 2, 1)
    image = np.repeat(visit_image, visit_size)
    session = np.repeat(visit_session, visit_size)

    # lost repeats: half of them from 12x images (12 -> 11), the rest from 4x images (4 -> 3)
    n_lost_12 = min(scale.lost_repeats // 2, int((repeats == SHARED_12REP).sum()))
    lost_images = np.concatenate([
        rng.choice(np.flatnonzero(repeats == SHARED_12REP), n_lost_12, replace=False),
        rng.choice(np.flatnonzero(repeats == UNIQUE_REPEATS), scale.lost_repeats - n_lost_12, replace=False),
    ])  # fmt: skip
    drop = [rng.choice(np.flatnonzero(image == i)) for i in lost_images]
    keep = np.ones(len(image), bool)
    keep[drop] = False
    image, session = image[keep], session[keep]

    # chronological order: by session, shuffled within it
    order = np.lexsort((rng.random(len(image)), session))
    image, session = image[order], session[order]
    starts = np.r_[0, np.flatnonzero(np.diff(session)) + 1]
    sizes = np.diff(np.r_[starts, len(session)])
    beta_index = np.arange(len(session)) - np.repeat(starts, sizes)
    run = beta_index * scale.runs_per_session // np.repeat(sizes, sizes) + 1
    # repetition: 1-based presentation number of the image, in chronological order
    by_image = np.argsort(image, kind="stable")
    counts = np.bincount(image, minlength=n_images)
    rank = np.arange(len(image)) - np.repeat(np.cumsum(counts) - counts, counts)
    repetition = np.empty(len(image), np.int64)
    repetition[by_image] = rank + 1
    return TrialTable(
        stimuli=stimuli,
        image=image,
        session=(session + 1).astype(np.int16),
        run=run.astype(np.int16),
        beta_index=beta_index.astype(np.int32),
        repetition=repetition.astype(np.int16),
        lost=np.sort(stimuli.stimulus_id[lost_images]),
    )
