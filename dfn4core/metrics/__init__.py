"""Speech quality metrics: SI-SDR, segmental SNR, PESQ, STOI/ESTOI, composite CSIG/CBAK/COVL, DNSMOS.

Each metric is a plain function on numpy arrays or torch tensors. Intrusive metrics take
`(reference, estimate, sr)`, raise MetricError on a rate or length mismatch unless
`align=True`, and run at 16 kHz. `suite` names them for `dfn4core.evaluate`; `sets` matches files.
"""

from dfn4core.errors import MetricError
from dfn4core.metrics.composite import Composite, composite
from dfn4core.metrics.dnsmos import DnsmosScores, dnsmos
from dfn4core.metrics.inputs import check_pair
from dfn4core.metrics.pesq_stoi import estoi, pesq, stoi
from dfn4core.metrics.sdr import segmental_snr, si_sdr

__all__ = [
    "Composite",
    "DnsmosScores",
    "MetricError",
    "check_pair",
    "composite",
    "dnsmos",
    "estoi",
    "pesq",
    "segmental_snr",
    "si_sdr",
    "stoi",
]
