"""Registry of the polyp datasets: where they come from, what they contain, how to cite them.

Links die (the PraNet Google-Drive bundles often do): every source names its landing page, and the
installer accepts a local archive or an extracted folder instead of a URL (``--kvasir PATH``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from kdas_lab.data.layout import TEST, TRAIN


@dataclass(frozen=True)
class DataSource:
    key: str  # CLI flag name: --kvasir, --clinicdb, ...
    name: str  # folder name in the PraNet TestDataset
    landing_page: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None  # of the archive at urls[0]; None when unknown
    layout: str = ""  # expected layout of the original release
    n_images: int | None = None  # pairs in the original release
    n_test: int | None = None  # pairs in the PraNet test set
    n_train: int = 0  # pairs it contributes to the PraNet TrainDataset
    image_size: str = ""
    citation: str = ""
    terms: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


KVASIR = DataSource(
    key="kvasir", name="Kvasir",
    landing_page="https://datasets.simula.no/kvasir-seg/",
    urls=("https://datasets.simula.no/downloads/kvasir-seg.zip",),
    sha256="f9a4ab6e2c90e77ec22c7ba4d154c4de1d19b6c517df09ab59aa0113e2dd6fca",
    layout="Kvasir-SEG/images/<hash>.jpg, Kvasir-SEG/masks/<hash>.jpg (JPEG masks), kavsir_bboxes.json",
    n_images=1000, n_test=100, n_train=900, image_size="332x487 .. 1920x1072",
    citation="D. Jha et al., 'Kvasir-SEG: A Segmented Polyp Dataset', MMM 2020.",
    terms="Research and educational use; commercial use needs the owners' written permission; cite the paper.",
)
CLINICDB = DataSource(
    key="clinicdb", name="CVC-ClinicDB",
    landing_page="https://polyp.grand-challenge.org/CVCClinicDB/",
    layout="CVC-ClinicDB/Original/<N>.tif, CVC-ClinicDB/Ground Truth/<N>.tif (N = 1..612; PNG copies accepted)",
    n_images=612, n_test=62, n_train=550, image_size="384x288",
    citation="J. Bernal et al., 'WM-DOVA maps for accurate polyp highlighting in colonoscopy', CMIG 2015.",
    terms="Research and educational use only; commercial use forbidden; cite the paper.",
    notes=("29 video sequences; frame ranges in README.txt (kdas_lab.data.split.CLINICDB_SEQUENCES)",
           "RGB TIFFs: read with tifffile (Pillow cannot)"),
)
COLONDB = DataSource(
    key="colondb", name="CVC-ColonDB",
    landing_page="http://vi.cvc.uab.es/colon-qa/cvccolondb/",
    layout="PraNet-style folder or archive: images/ + masks/",
    n_images=380, n_test=380, image_size="574x500",
    citation="J. Bernal, J. Sanchez, F. Vilarino, 'Towards automatic polyp detection with a polyp appearance "
             "model', Pattern Recognition 2012.",
    terms="Research dataset; licence unstated: research use, cite the paper.",
)
ETIS = DataSource(
    key="etis", name="ETIS-LaribPolypDB",
    landing_page="https://polyp.grand-challenge.org/EtisLarib/",
    layout="PraNet-style folder or archive: images/ + masks/",
    n_images=196, n_test=196, image_size="1225x966",
    citation="J. Silva et al., 'Toward embedded detection of polyps in WCE images for early diagnosis of "
             "colorectal cancer', IJCARS 2014.",
    terms="Research dataset; licence unstated: research use, cite the paper.",
)
CVC300 = DataSource(
    key="cvc300", name="CVC-300",
    landing_page="http://www.cvc.uab.es/CVC-Colon/index.php/databases/cvc-endoscenestill/",
    layout="PraNet-style folder or archive: images/ + masks/ (EndoScene test split)",
    n_images=60, n_test=60, image_size="574x500",
    citation="D. Vazquez et al., 'A benchmark for endoluminal scene segmentation of colonoscopy images', JHE 2017.",
    terms="Research dataset; licence unstated: research use, cite the paper.",
)
PRANET_TEST = DataSource(
    key="pranet_test", name=TEST,
    landing_page="https://github.com/DengPingFan/PraNet",
    urls=("https://drive.google.com/file/d/1Y2z7FD5p5y31vkZwQQomXFRB0HutHyao",),
    layout="TestDataset/<Kvasir|CVC-ClinicDB|CVC-ColonDB|ETIS-LaribPolypDB|CVC-300>/{images,masks}",
    n_images=798, image_size="varies",
    citation="D.-P. Fan et al., 'PraNet: Parallel Reverse Attention Network for Polyp Segmentation', MICCAI 2020.",
    terms="Repackages the datasets above: their terms apply.",
    notes=("Google Drive (327 MB); users report the link failing: rebuild from the originals instead",),
)
PRANET_TRAIN = DataSource(
    key="pranet_train", name=TRAIN,
    landing_page="https://github.com/DengPingFan/PraNet",
    urls=("https://drive.google.com/file/d/1YiGHLw4iTvKdvbT6MgwO9zcCv8zJ_Bnb",),
    layout="TrainDataset/{images,masks}: 900 Kvasir-SEG + 550 CVC-ClinicDB",
    n_images=1450, image_size="varies",
    citation=PRANET_TEST.citation, terms=PRANET_TEST.terms,
    notes=("Google Drive (400 MB); users report the link failing",),
)

SOURCES: dict[str, DataSource] = {s.key: s for s in (KVASIR, CLINICDB, COLONDB, ETIS, CVC300, PRANET_TEST,
                                                      PRANET_TRAIN)}
TEST_SETS: tuple[DataSource, ...] = (KVASIR, CLINICDB, COLONDB, ETIS, CVC300)
TRAIN_PAIRS = KVASIR.n_train + CLINICDB.n_train  # 1,450
SPLIT_FILES = {"kvasir": "pranet_kvasir_test.txt", "clinicdb": "pranet_clinicdb_test.txt"}


def pranet_test_stems(key: str) -> list[str]:
    """The PraNet test stems of ``kvasir`` (100 hashes) or ``clinicdb`` (62 frame numbers), shipped in the package."""
    if key not in SPLIT_FILES:
        raise KeyError(f"no PraNet split list for {key!r}; known: {sorted(SPLIT_FILES)}")
    text = resources.files("kdas_lab.data").joinpath("splits", SPLIT_FILES[key]).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def sources_table():
    """All sources as a pandas DataFrame (for the docs and notebooks)."""
    import pandas as pd  # noqa: PLC0415 (lazy: the data tools start without pandas)

    rows = [{"key": s.key, "name": s.name, "images": s.n_images, "test": s.n_test, "train": s.n_train,
             "size": s.image_size, "landing_page": s.landing_page, "url": s.urls[0] if s.urls else "",
             "sha256": s.sha256 or "", "citation": s.citation, "terms": s.terms} for s in SOURCES.values()]
    return pd.DataFrame(rows).set_index("key")
