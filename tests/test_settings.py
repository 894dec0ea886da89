"""selmatch.settings: profiles, the paper's settings, the 64x64 rule and the notebooks' grids in one place."""
from __future__ import annotations

from dataclasses import replace

import pytest

from selmatch.networks import for_image_size
from selmatch.settings import (NOTEBOOK_GRIDS, PAPER_SETTINGS, PRESETS, PROFILES, get_preset, get_profile,
                               notebook_parameters, paper_setting)

N_TRAIN = {"cifar10": (50_000, 10, 32), "cifar100": (50_000, 100, 32), "tinyimagenet": (100_000, 200, 64)}


@pytest.mark.parametrize("name", sorted(PAPER_SETTINGS))
def test_paper_evaluation_epochs_follow_the_official_rule(name):
    """The official scripts' epochs (a field of each setting) are what the paper profile computes."""
    s = PAPER_SETTINGS[name]
    n_train, classes, size = N_TRAIN[s.dataset]
    assert PROFILES["paper"].eval_config(n_train, s.ipc * classes, size).epochs == s.eval_epochs


def test_paper_settings_are_the_official_table():
    assert len(PAPER_SETTINGS) == 10
    c10 = paper_setting("cifar10", 1000)
    assert (c10.alpha, c10.beta, c10.distill.lr_img, c10.distill.syn_steps, c10.score) == (0.1, 0.2, 10000, 55, "cscore")
    tiny = paper_setting("tinyimagenet-c10", 50)                      # Tiny's subsets use Tiny's settings
    assert (tiny.distill.syn_steps, tiny.score, tiny.alpha, tiny.beta) == (20, "forgetting", 0.6, 0.8)
    with pytest.raises(ValueError, match="valid ipc: 25, 50, 100, 150"):
        paper_setting("cifar100", 30)
    with pytest.raises(ValueError, match="not a dataset of the paper"):
        paper_setting("mnist5k")


def test_the_64_pixel_rule_is_applied_everywhere():
    assert for_image_size("convnet_bn", None, 64) == ("convnet_bn", 4)
    assert for_image_size("convnet_bn", 2, 64) == ("convnet_bn", 2)              # an explicit depth stays
    assert for_image_size("resnet18_bn", None, 64) == ("resnet18_bn_tiny", None)
    assert for_image_size("convnet", None, 32) == ("convnet", None)
    assert PROFILES["cpu"].setting("tinyimagenet-c10", 64).expert.depth == 4
    assert get_preset("tiny-ipc50", "tinyimagenet", 64).expert.depth == 4
    assert PROFILES["paper"].eval_config(100_000, 10_000, 64).model == "resnet18_bn_tiny"
    assert PROFILES["cpu"].eval_config(5_000, 500, 64).depth == 4
    cpu64 = PROFILES["cpu"].setting("tinyimagenet-c10", 64).distill
    assert (cpu64.iterations, cpu64.batch_syn) == (200, 64)                     # the profile's 64x64 variant
    assert PROFILES["cpu"].setting("cifar10", 32).distill.iterations == 300


def test_each_name_means_one_thing():
    assert set(PRESETS) == set(PAPER_SETTINGS) | {"smoke", "cpu", "lesson"}
    assert get_preset("cpu", "cifar10", 32) == PROFILES["cpu"].setting("cifar10", 32)
    assert get_preset("paper", "cifar10", 32, ipc=500) == PAPER_SETTINGS["cifar10-ipc500"]
    with pytest.raises(ValueError, match="preset='cpu-tiny' is unknown; valid: cifar10-ipc250"):
        get_preset("cpu-tiny", "tinyimagenet-c10", 64)
    with pytest.raises(ValueError, match="profile='gpu' is unknown; valid: smoke, cpu, lesson, paper"):
        get_profile("gpu")


def test_profile_key_ignores_the_distillation_but_not_the_evaluation():
    cpu = PROFILES["cpu"]
    assert replace(cpu, distillation=PROFILES["smoke"].distillation).key() == cpu.key()
    assert replace(cpu, runs=cpu.runs + 1).key() != cpu.key()
    assert len({p.key() for p in PROFILES.values()}) == len(PROFILES)


def test_notebook_parameters_fill_only_what_is_not_given():
    got = notebook_parameters("05_main_results", "cpu", ipcs=None, betas=[0.1], alphas=None)
    assert got == {"ipcs": NOTEBOOK_GRIDS["cpu"]["05_main_results"]["ipcs"], "betas": [0.1],
                   "alphas": NOTEBOOK_GRIDS["cpu"]["05_main_results"]["alphas"]}
    with pytest.raises(ValueError, match="has no 'cpu' default for widths"):
        notebook_parameters("05_main_results", "cpu", widths=None)


def test_notebook_parameters_read_papermill_strings_as_the_grid_types():
    # papermill -p ipcs "[50, 100]" injects the string; the notebook reads it as the grid's list
    got = notebook_parameters("04_ablations", "cpu", ipcs="[50, 100]", alphas=None, betas="[0.4]", alpha_fixed="0.5",
                              distill_budgets="[[100, 10]]")
    assert got["ipcs"] == [50, 100] and got["betas"] == [0.4] and got["alpha_fixed"] == 0.5
    assert got["distill_budgets"] == [[100, 10]] and got["alphas"] == NOTEBOOK_GRIDS["cpu"]["04_ablations"]["alphas"]
    with pytest.raises(ValueError, match=r"ipcs='250' must be a list, e\.g\. ipcs=\[250, 500\]"):
        notebook_parameters("04_ablations", "cpu", ipcs="250")
    with pytest.raises(ValueError, match=r"ipcs='\[50,' is not a list or number"):
        notebook_parameters("04_ablations", "cpu", ipcs="[50,")
    with pytest.raises(ValueError, match="alpha_fixed='big' must be a number"):
        notebook_parameters("04_ablations", "cpu", alpha_fixed="big")


def test_a_switch_of_a_page_grid_takes_true_or_false_and_nothing_else():
    import pytest

    from selmatch.settings import notebook_parameters

    assert notebook_parameters("05_main_results", "cpu", paper_setting="true") == {"paper_setting": True}
    assert notebook_parameters("05_main_results", "smoke", paper_setting=False) == {"paper_setting": False}
    for bad in ("3", 1, "yes please"):
        with pytest.raises(ValueError, match=r"paper_setting=.* must be true or false"):
            notebook_parameters("05_main_results", "cpu", paper_setting=bad)
