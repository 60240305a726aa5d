"""Training data: on-the-fly mixing and paired noisy/clean sets, as deterministic items at the model's rate.

Public API: `DataConfig` (with `MixSource`, `PairedSource`, `SplitConfig`), `load_data_config`,
`build_dataset`, `make_loader`. h5py is imported only when an HDF5 source is read.
"""

from dfn4core.data.config import DataConfig, MixSource, PairedSource, SplitConfig, load_data_config
from dfn4core.data.loader import SegmentDataset, build_dataset, make_loader

__all__ = [
    "DataConfig",
    "MixSource",
    "PairedSource",
    "SegmentDataset",
    "SplitConfig",
    "build_dataset",
    "load_data_config",
    "make_loader",
]
