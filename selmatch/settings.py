"""Every setting in one place: the compute profiles, the distillation at each, the paper's ten settings,
and the notebooks' parameter grids.

Two kinds of names, each meaning one thing:

* a **profile** (``smoke``, ``cpu``, ``paper``) is a compute scale for *everything*: how fresh networks are
  trained and evaluated, how scores and coverage features are made, how many runs, and the experts and
  distillation (``smoke`` and ``cpu`` have one distillation setting each, with a variant for 64x64
  images; ``paper`` uses the official setting of each dataset and IPC);
* a **paper setting** (``cifar10-ipc250`` ... ``tiny-ipc100``) is one row of the official scripts
  (the paper's α, β, lr_img and evaluation epochs for one dataset and IPC).

``selmatch experts/distill --preset NAME`` take either kind (a profile name means that profile's
distillation). The network rule for 64x64 images lives in :func:`selmatch.networks.for_image_size` and
is applied here, once, to every network a profile trains.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .artifacts import config_key
from .distill import DistillConfig
from .experts import ExpertConfig
from .networks import for_image_size
from .train import TrainConfig


@dataclass(frozen=True)
class Preset:
    """A distillation setting: the initial selection, the experts and the distillation hyperparameters."""

    name: str
    dataset: str | None                      # None: any dataset (a profile's own setting)
    ipc: int                                 # images per class (command-line default)
    alpha: float                             # fraction of each class's window distilled
    beta: float                              # window start
    score: str = "cscore"                    # the difficulty that orders each class
    start_mode: str = "fraction"             # how beta is read (selmatch.select)
    eval_epochs: int | None = None           # the official evaluation epochs (paper settings)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    @property
    def model(self) -> str:
        return self.expert.model

    def for_image_size(self, image_size: int) -> "Preset":
        """The same setting with the experts' network fitted to ``image_size`` (ConvNetD4 for 64x64)."""
        model, depth = for_image_size(self.expert.model, self.expert.depth, image_size)
        return replace(self, expert=replace(self.expert, model=model, depth=depth))


# ----------------------------------------------------------------------------- the paper's ten settings

CIFAR_EXPERT = ExpertConfig()                           # ConvNetBN-128, 100 experts x 100 epochs (the book: *The paper*, official settings)
CIFAR_DISTILL = DistillConfig()                         # 10,000 iterations, syn_steps 55, batch 125
TINY_DISTILL = replace(CIFAR_DISTILL, syn_steps=20)     # the network becomes ConvNetD4BN by the 64x64 rule
FAMILY = {"cifar10": "cifar10", "cifar100": "cifar100", "tinyimagenet": "tiny"}


def _paper(dataset: str, *, ipc: int, alpha: float, beta: float, lr_img: float, eval_epochs: int) -> Preset:
    tiny = dataset == "tinyimagenet"
    return Preset(f"{FAMILY[dataset]}-ipc{ipc}", dataset, ipc=ipc, alpha=alpha, beta=beta,
                  score="forgetting" if tiny else "cscore", eval_epochs=eval_epochs, expert=CIFAR_EXPERT,
                  distill=replace(TINY_DISTILL if tiny else CIFAR_DISTILL, lr_img=lr_img))


PAPER_SETTINGS: dict[str, Preset] = {p.name: p for p in [
    _paper("cifar10", ipc=250, alpha=0.6, beta=0.5, lr_img=1000, eval_epochs=1000),
    _paper("cifar10", ipc=500, alpha=0.2, beta=0.3, lr_img=1000, eval_epochs=500),
    _paper("cifar10", ipc=1000, alpha=0.1, beta=0.2, lr_img=10000, eval_epochs=250),
    _paper("cifar10", ipc=1500, alpha=0.1, beta=0.2, lr_img=10000, eval_epochs=167),
    _paper("cifar100", ipc=25, alpha=0.8, beta=0.8, lr_img=1000, eval_epochs=1000),
    _paper("cifar100", ipc=50, alpha=0.6, beta=0.7, lr_img=1000, eval_epochs=500),
    _paper("cifar100", ipc=100, alpha=0.3, beta=0.6, lr_img=1000, eval_epochs=250),
    _paper("cifar100", ipc=150, alpha=0.2, beta=0.4, lr_img=1000, eval_epochs=167),
    _paper("tinyimagenet", ipc=50, alpha=0.6, beta=0.8, lr_img=1000, eval_epochs=500),
    _paper("tinyimagenet", ipc=100, alpha=0.5, beta=0.7, lr_img=1000, eval_epochs=250),
]}


def paper_setting(dataset: str, ipc: int | None = None) -> Preset:
    """The official setting for ``dataset`` (TinyImageNet subsets use Tiny's) at ``ipc`` (None: the first)."""
    family = "tinyimagenet" if dataset.startswith("tinyimagenet") else dataset
    matches = [p for p in PAPER_SETTINGS.values() if p.dataset == family and (ipc is None or p.ipc == ipc)]
    if not matches:
        have = sorted(p.ipc for p in PAPER_SETTINGS.values() if p.dataset == family)
        raise ValueError(f"the paper has no setting for dataset={dataset!r}, ipc={ipc}; "
                         f"valid ipc: {', '.join(map(str, have)) or 'none (not a dataset of the paper)'}")
    return matches[0]


# ----------------------------------------------------------------------------- compute profiles

@dataclass(frozen=True)
class Profile:
    """A compute scale. Evaluation epochs keep ``epochs * subset size`` constant (the official rule, with
    ``eval_full_epochs`` full-data epochs), clipped to ``[eval_min_epochs, eval_max_epochs]``."""

    name: str
    eval: TrainConfig          # training a fresh network on a selected/distilled set
    scores: TrainConfig        # the network whose training records forgetting/EL2N
    features: TrainConfig      # the network whose penultimate layer defines coverage
    runs: int                  # evaluation runs reported as mean ± std
    coverage_real: int | None = None       # real training images used for coverage (None = all)
    eval_full_epochs: float | None = None  # evaluation epochs * subset size = this * training-set size
    eval_max_epochs: int | None = None     # ... but at most this many epochs (small subsets)
    eval_min_epochs: int = 1               # ... and at least this many (small training sets)
    test_subset: int | None = None         # a class-balanced sample of the test set (None = all)
    distillation: Preset | None = None     # experts + distillation at this scale; None = the paper's per IPC
    distillation_64: Preset | None = None  # ... for 64x64 images, where a step costs ~4x (None = the same)

    def key(self) -> str:
        """What every result computed at this profile depends on (its hash is part of every cache key).
        The distillation settings are left out: the results that use them carry them in their own key."""
        return config_key({k: v for k, v in asdict(self).items() if k not in ("distillation", "distillation_64")})

    def eval_config(self, n_train: int, n_subset: int, image_size: int = 32, model: str | None = None) -> TrainConfig:
        """The evaluation config for a subset of ``n_subset`` of ``n_train`` images of ``image_size`` pixels."""
        cfg = self.eval if model is None else self.eval.with_(model=model)
        cfg = fit_to_images(cfg, image_size)
        if self.eval_full_epochs is not None:
            epochs = max(1, round(self.eval_full_epochs * n_train / n_subset))
            cfg = cfg.with_(epochs=max(self.eval_min_epochs, min(epochs, self.eval_max_epochs or epochs)))
        return cfg

    def setting(self, dataset: str, image_size: int, ipc: int | None = None) -> Preset:
        """The experts and distillation for ``dataset`` at this profile (the paper's for its ``ipc``)."""
        if self.distillation is None:
            base = paper_setting(dataset, ipc)
        else:
            base = self.distillation_64 if image_size >= 64 and self.distillation_64 else self.distillation
        return base.for_image_size(image_size)


def fit_to_images(cfg: TrainConfig, image_size: int) -> TrainConfig:
    model, depth = for_image_size(cfg.model, cfg.depth, image_size)
    return cfg if (model, depth) == (cfg.model, cfg.depth) else cfg.with_(model=model, depth=depth)


SMOKE_DISTILL = Preset(   # seconds: experts on 50 images per class, a handful of iterations
    "smoke", None, ipc=10, alpha=0.5, beta=0.5,
    expert=ExpertConfig(model="convnet_bn", width=16, num_experts=2, epochs=3, max_per_class=50, batch_size=128),
    distill=DistillConfig(iterations=5, syn_steps=5, expert_epochs=1, max_start_epoch=2, lr_img=100, lr_init=0.01,
                          batch_syn=50, checkpoint_every=2))
CPU_DISTILL = Preset(     # the book's scale on 2 CPU cores: experts on 1,000 images per class, short distillation
    "cpu", None, ipc=50, alpha=0.5, beta=0.2,
    expert=ExpertConfig(model="convnet_bn", width=32, num_experts=5, epochs=10, max_per_class=1000, batch_size=256),
    distill=DistillConfig(iterations=60, syn_steps=10, expert_epochs=2, max_start_epoch=6, lr_img=1000,
                          lr_init=0.01, batch_syn=128, checkpoint_every=10))
LESSON_DISTILL = Preset(  # minutes: experts on 500 images per class, a short distillation (the lesson profile)
    "lesson", None, ipc=10, alpha=0.5, beta=0.5,
    expert=ExpertConfig(model="convnet", width=16, num_experts=3, epochs=4, max_per_class=500, batch_size=256),
    distill=DistillConfig(iterations=100, syn_steps=10, expert_epochs=2, max_start_epoch=2, lr_img=1000,
                          lr_init=0.01, batch_syn=100, checkpoint_every=20))
# 64x64 images: a step costs ~4x a CIFAR step, so half the batch and two thirds of the iterations keep a
# distillation at about twice the CIFAR cost.
CPU_DISTILL_64 = replace(CPU_DISTILL, distill=replace(CPU_DISTILL.distill, iterations=40, batch_syn=64))

CPU_FIRST = Profile(   # the cpu profile as first built (before the pilots of notebook 08 redesigned it)
    "cpu",
    # ConvNet width 32 trains at ~1,500 img/s on 2 cores; eval_full_epochs=1 makes every evaluation
    # process 50,000 images (~35 s), whatever the subset size (the paper's rule with 1 instead of 50).
    eval=TrainConfig(model="convnet", width=32, epochs=100, lr=0.01, batch_size=128, augmentation="dsa"),
    scores=TrainConfig(model="convnet", width=32, epochs=15, lr=0.01, batch_size=128, augmentation="simple"),
    features=TrainConfig(model="convnet", width=32, epochs=5, lr=0.01, batch_size=128, augmentation="simple"),
    runs=3, coverage_real=10000, eval_full_epochs=1.0, eval_max_epochs=200, eval_min_epochs=10,
    distillation=CPU_DISTILL, distillation_64=CPU_DISTILL_64)

# The pilots of notebooks/08_cpu_profile.md start from each profile's original distillation setting.
PILOT_START: dict[str, Preset] = {"smoke": SMOKE_DISTILL, "cpu": CPU_DISTILL, "paper": PAPER_SETTINGS["cifar10-ipc250"]}

# The cpu profile as the pilots of notebook 08 chose it (the book's own results on a 2-core CPU).
_CPU_EXPERTS = replace(CPU_DISTILL, expert=replace(CPU_DISTILL.expert, model="convnet", max_per_class=None),
                       distill=replace(CPU_DISTILL.distill, iterations=300))
CPU = replace(
    CPU_FIRST,
    # the evaluation (pilots of notebook 08, validation half): at 5 % lr 0.03 levels off from E = 2, while
    # 30 % still rises at the largest budget tried (27 epochs); E = 4 with a floor of 30 epochs (binding from
    # about 13 % up) spends more where accuracy still rises. Small subsets level off by 200-500 epochs (cap
    # 500). Five runs per evaluated set, paired by seed.
    eval=CPU_FIRST.eval.with_(lr=0.03),
    runs=5, eval_full_epochs=4.0, eval_max_epochs=500, eval_min_epochs=30,
    # the experts: the evaluation's own network (ConvNet with instance norm, as MTT matches and evaluates)
    # on every training image, and 300 iterations (the pilots' length): the largest gain of the pilots
    distillation=_CPU_EXPERTS,
    distillation_64=replace(_CPU_EXPERTS, distill=replace(_CPU_EXPERTS.distill, iterations=200, batch_syn=64)))

PROFILES: dict[str, Profile] = {
    "smoke": Profile(       # seconds; what tests and CI run
        "smoke",
        eval=TrainConfig(model="convnet", width=16, epochs=30, lr=0.03, batch_size=64, augmentation="dsa"),
        scores=TrainConfig(model="convnet", width=8, epochs=2, lr=0.02, batch_size=512, augmentation="none"),
        features=TrainConfig(model="convnet", width=8, epochs=1, lr=0.02, batch_size=512, augmentation="none"),
        runs=2, coverage_real=2000, eval_full_epochs=0.04, eval_max_epochs=20, eval_min_epochs=10,
        test_subset=1000, distillation=SMOKE_DISTILL),
    "cpu": CPU,             # the book's own results on a 2-core CPU (above)
    "lesson": Profile(      # minutes: the in-class exercises (selmatch.companion.lesson), each decidable at its scale
        "lesson",
        eval=TrainConfig(model="convnet", width=16, epochs=100, lr=0.03, batch_size=64, augmentation="dsa"),
        scores=TrainConfig(model="convnet", width=8, epochs=3, lr=0.02, batch_size=512, augmentation="none"),
        features=TrainConfig(model="convnet", width=8, epochs=2, lr=0.02, batch_size=512, augmentation="none"),
        runs=6, coverage_real=5000, eval_full_epochs=0.3, eval_max_epochs=300, eval_min_epochs=20,
        test_subset=2000, distillation=LESSON_DISTILL,
        # 64x64 (TinyImageNet): a step costs ~4x, so half the iterations and half the batch keep it in a class
        distillation_64=replace(LESSON_DISTILL, distill=replace(LESSON_DISTILL.distill, iterations=50, batch_syn=50,
                                                                checkpoint_every=10))),
    "paper": Profile(       # the official hyperparameters, for a GPU
        "paper",
        eval=TrainConfig(model="resnet18_bn", epochs=500, lr=0.1, batch_size=128, augmentation="dsa"),
        scores=TrainConfig(model="resnet18_bn", epochs=200, lr=0.1, batch_size=128, augmentation="simple"),
        features=TrainConfig(model="resnet18_bn", epochs=200, lr=0.1, batch_size=128, augmentation="simple"),
        runs=5, eval_full_epochs=50.0),
}

# The profiles as first built, before the pilots of notebook 08 redesigned them (that page sets them beside the
# present ones).
FIRST_DESIGN: dict[str, Profile] = {"cpu": CPU_FIRST}


PRESETS: dict[str, Preset] = {**PAPER_SETTINGS, **{name: p.distillation for name, p in PROFILES.items()
                                                   if p.distillation is not None}}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is unknown; valid: {', '.join(PROFILES)}")
    return PROFILES[name]


def get_preset(name: str, dataset: str, image_size: int, ipc: int | None = None) -> Preset:
    """A paper setting by name, or a profile's distillation for ``dataset`` (fitted to its image size)."""
    if name in PAPER_SETTINGS:
        return PAPER_SETTINGS[name].for_image_size(image_size)
    if name in PROFILES:
        return PROFILES[name].setting(dataset, image_size, ipc)
    raise ValueError(f"preset={name!r} is unknown; valid: {', '.join(PRESETS)}")


# ----------------------------------------------------------------------------- the notebooks' grids

# Per profile, the values a notebook's list parameters take when the notebook is given ``None`` (its
# default). ``python -m selmatch.companion.book`` passes only ``profile``; the notebook fills the rest from
# here (:func:`notebook_parameters`), so ``papermill ... -p profile cpu`` runs the page's own experiment.
# At cpu the notebooks share work: 03 and 04 use the main table's α (0.25) and budgets, so their
# distillations are the ones notebook 05 already ran.
NOTEBOOK_GRIDS: dict[str, dict[str, dict]] = {
    "smoke": {
        "02_sliding_window": {"ipcs": [10, 20], "betas": [0.0, 0.5], "code_betas": [0.0, 0.5]},
        "03_coverage": {"ipcs": [10, 20], "betas": [0.0, 0.5], "alpha": 0.5, "eval_at": [0, 2, 5]},
        "04_ablations": {"ipcs": [10, 20], "alphas": [0.0, 0.5, 1.0], "betas": [0.0, 0.5], "alpha_fixed": 0.5,
                         "distill_budgets": [[2, 3], [5, 5]]},
        "05_main_results": {"ipcs": [10, 20], "betas": [0.0, 0.5], "alphas": [0.5], "draws": 2, "draw_ipcs": [20],
                            "paper_setting": True},
        "06_tinyimagenet": {"ipcs": [10], "betas": [0.0, 0.5], "alpha": 0.5},
        "08_cpu_profile": {"budget_ipcs": [10], "budgets": [0.02, 0.04], "budget_lrs": [0.03], "small_ipcs": [5], "small_lrs": [0.03],
                           "max_epochs": [10, 20], "expert_variants": [{}, {"max_per_class": 20}],
                           "distill_ipcs": [10], "pilot_iterations": 3,
                           "large_ipcs": [10], "large_arms": ["profile", "late", "lr_small"], "profile_ipcs": [20]},
        "09_crossover": {"ipcs": [1, 10, 20], "betas": [0.0, 0.5], "eval_at": [0, 3], "download_mb": 1.0},
    },
    "cpu": {   # the windows at 250-1500 come from 02's sweep; 04 sweeps α at two ratios and the distillation budget
        "02_sliding_window": {"ipcs": [50, 250, 500, 1000, 1500], "betas": [0.0, 0.2, 0.4, 0.6, 0.8], "code_betas": [0.4]},
        "03_coverage": {"ipcs": [250, 500], "betas": [0.6, 0.8], "alpha": 0.25, "eval_at": [0, 100, 200, 300]},
        "04_ablations": {"ipcs": [250, 500], "alphas": [0.0, 0.25, 0.5, 1.0], "betas": [0.6, 0.8], "alpha_fixed": 0.25,
                         "distill_budgets": [[100, 10], [300, 10], [900, 10], [100, 30], [300, 30]]},
        "05_main_results": {"ipcs": [250, 500, 1000, 1500], "betas": [0.2, 0.4, 0.6, 0.8], "alphas": [0.25, 0.5],
                            "draws": 3, "draw_ipcs": [500, 1000, 1500], "paper_setting": True},
        "06_tinyimagenet": {"ipcs": [50, 100], "betas": [0.4, 0.6, 0.8], "alpha": 0.25},
        "08_cpu_profile": {"budget_ipcs": [250, 1500], "budgets": [1, 2, 4, 8], "budget_lrs": [0.01, 0.03, 0.1],
                           "small_ipcs": [10, 50], "small_lrs": [0.01, 0.03], "max_epochs": [200, 500, 1000],
                           "expert_variants": [{}, {"max_per_class": None},
                                               {"model": "convnet", "max_per_class": None}],
                           "distill_ipcs": [10, 250], "pilot_iterations": 300,
                           # the large-IPC pilot's arms with committed results (selmatch.companion.pages.cpu_profile)
                           "large_ipcs": [500], "large_arms": ["profile", "late", "lr_small", "near", "syn_lr", "lr_paper"],
                           "profile_ipcs": [1000]},
        "09_crossover": {"ipcs": [1, 10, 50, 250, 500], "betas": [0.4, 0.8], "eval_at": [0, 100, 200, 300],
                         "download_mb": 2.0},
    },
    "lesson": {  # one in-class exercise per page (selmatch.companion.lesson): minutes from a cold cache, 6 runs
        "02_sliding_window": {"ipcs": [50], "betas": [0.0, 0.4, 0.8], "code_betas": []},
        "03_coverage": {"ipcs": [10], "betas": [0.5], "alpha": 0.5, "eval_at": [0, 50, 100]},
        "04_ablations": {"ipcs": [10], "alphas": [0.0, 1.0], "betas": [0.5], "alpha_fixed": 0.5,
                         "distill_budgets": []},
        "05_main_results": {"ipcs": [10], "betas": [0.5], "alphas": [0.5], "draws": 1, "draw_ipcs": [10],
                            "paper_setting": True},
        "06_tinyimagenet": {"ipcs": [10], "betas": [0.0, 0.6], "alpha": 0.5},
        "08_cpu_profile": {"budget_ipcs": [10], "budgets": [0.3], "budget_lrs": [0.03], "small_ipcs": [5],
                           "small_lrs": [0.03], "max_epochs": [300], "expert_variants": [{}],
                           "distill_ipcs": [10], "pilot_iterations": 100, "large_ipcs": [], "large_arms": [],
                           "profile_ipcs": []},
        "09_crossover": {"ipcs": [1, 10], "betas": [0.5], "eval_at": [0, 50, 100], "download_mb": 0.0},
    },
    "paper": {   # the paper's budgets and sweeps (a GPU's work: see the main-results page)
        "02_sliding_window": {"ipcs": [250, 500, 1000, 1500], "betas": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
                              "code_betas": [0.0, 0.2, 0.5]},
        "03_coverage": {"ipcs": [250, 500], "betas": [0.3, 0.5], "alpha": 0.2, "eval_at": [0, 1000, 5000, 10000]},
        "04_ablations": {"ipcs": [250], "alphas": [0.0, 0.2, 0.6, 1.0], "betas": [0.5], "alpha_fixed": 0.6,
                         "distill_budgets": [[2000, 55], [10000, 55]]},
        "05_main_results": {"ipcs": [250, 500, 1000, 1500], "betas": [0.2, 0.3, 0.5], "alphas": [0.1, 0.2, 0.6],
                            "draws": 3, "draw_ipcs": [500, 1000, 1500], "paper_setting": True},
        "06_tinyimagenet": {"ipcs": [50, 100], "betas": [0.7, 0.8], "alpha": 0.5},
        "08_cpu_profile": {"budget_ipcs": [250, 1500], "budgets": [10, 25, 50], "budget_lrs": [0.1],
                           "small_ipcs": [10, 50], "small_lrs": [0.1], "max_epochs": [500, 1000], "expert_variants": [{}],
                           "distill_ipcs": [250], "pilot_iterations": 1000,
                           "large_ipcs": [], "large_arms": [], "profile_ipcs": []},
        "09_crossover": {"ipcs": [1, 10, 50, 250, 500, 1000], "betas": [0.2, 0.5, 0.8],
                         "eval_at": [0, 1000, 5000, 10000], "download_mb": 2.0},
    },
}


def page_grid(notebook: str, profile: str) -> dict:
    """The profile's grid for ``notebook``."""
    return NOTEBOOK_GRIDS.get(get_profile(profile).name, {}).get(notebook, {})


def notebook_parameters(notebook: str, profile: str, **given) -> dict:
    """``given`` with every ``None`` replaced by the profile's grid value for ``notebook``."""
    grid = page_grid(notebook, profile)
    missing = [k for k, v in given.items() if v is None and k not in grid]
    if missing:
        raise ValueError(f"notebook {notebook} has no {profile!r} default for {', '.join(missing)}; pass them "
                         f"(papermill -y '{{{missing[0]}: ...}}')")
    return {k: grid[k] if v is None else _parsed(k, v, grid.get(k)) for k, v in given.items()}


def _parsed(name: str, value, default):
    """``value`` as the type of the grid's ``default``: papermill's ``-p ipcs "[50, 100]"`` injects a string
    (``-p`` parses only numbers and booleans), which is read here as YAML (JSON is YAML)."""
    if isinstance(default, bool):
        out = {"true": True, "false": False}.get(value.strip().lower()) if isinstance(value, str) else value
        if not isinstance(out, bool):
            raise ValueError(f"{name}={value!r} must be true or false, e.g. {name}={default!r}")
        return out
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    import yaml

    try:
        out = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ValueError(f"{name}={value!r} is not a list or number ({str(err).splitlines()[0]}); "
                         f"write it as the grid does, e.g. {name}={default!r}") from None
    if isinstance(default, (list, dict)) and not isinstance(out, type(default)):
        raise ValueError(f"{name}={value!r} must be a {type(default).__name__}, e.g. {name}={default!r}")
    if isinstance(default, (int, float)) and (isinstance(out, bool) or not isinstance(out, (int, float))):
        raise ValueError(f"{name}={value!r} must be a number, e.g. {name}={default!r}")
    return out
