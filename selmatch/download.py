"""Downloads for users with internet. Nothing here runs in the tests except through a stand-in."""
from __future__ import annotations

from pathlib import Path

TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
CSCORE_URLS = {  # the C-score authors' release, in the original training order
    "CIFAR10": "https://pluskid.github.io/structural-regularity/cscores/cifar10-cscores-orig-order.npz",
    "CIFAR100": "https://pluskid.github.io/structural-regularity/cscores/cifar100-cscores-orig-order.npz",
}


def describe(spec) -> str:
    if spec.kind == "cifar":
        return f"torchvision.datasets.{spec.name.upper()}(download=True)"
    if spec.kind == "tiny":
        return TINY_URL
    return "nothing to download"


def download(spec, root: Path) -> None:
    """Fetch ``spec``'s dataset into ``root`` in its standard folder layout."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if spec.kind == "cifar":
        import torchvision

        cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[spec.name]
        cls(root=str(root), train=True, download=True)
        cls(root=str(root), train=False, download=True)
    elif spec.kind == "tiny":
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(TINY_URL, download_root=str(root))


def download_cscores(score_name: str, dest: Path) -> Path:
    """Fetch the published C-scores for ``CIFAR10`` or ``CIFAR100`` into folder ``dest``."""
    from torchvision.datasets.utils import download_url

    url = CSCORE_URLS[score_name]
    Path(dest).mkdir(parents=True, exist_ok=True)
    download_url(url, str(dest))
    return Path(dest) / url.rsplit("/", 1)[1]
