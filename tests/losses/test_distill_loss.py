import dataclasses

import pytest
import torch

from dfn4core import DFN4, ConfigError, ModelConfig
from dfn4core.config import DspConfig
from dfn4core.losses.distill import DistillConfig, DistillLoss, DistillWeights


def test_config_round_trip_and_unknown_keys():
    cfg = DistillConfig(teacher="t.pt", weights=DistillWeights(spec=2.0, emb=0.0))
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg and cfg.enabled and not DistillConfig().enabled
    with pytest.raises(ConfigError, match="distill.weights.specc"):
        DistillConfig.from_dict({"weights": {"specc": 1.0}})
    with pytest.raises(ConfigError, match="distill.teachr"):
        DistillConfig.from_dict({"teachr": "x"})
    with pytest.raises(ConfigError, match=">= 0"):
        DistillWeights(df=-1.0)
    with pytest.raises(ConfigError, match="gamma"):
        DistillConfig(gamma=0.0)


def test_terms_vanish_on_the_teacher_itself_and_train_the_projection(noisy_48k):
    teacher_cfg = dataclasses.replace(ModelConfig.tiny(), conv_ch=12, emb_dim=48, df_orders=(3, 5, 7))
    student, teacher = DFN4(ModelConfig.tiny()), DFN4(teacher_cfg)
    loss = DistillLoss(DistillConfig(), student.cfg, teacher.cfg)
    assert loss.proj.in_features == 64 and loss.proj.out_features == 96  # emb_width = conv_ch * 32 / 4
    wave = noisy_48k[:, :4800]
    with torch.no_grad():
        t_out = teacher(wave)
    same = DistillLoss(DistillConfig(weights=DistillWeights(emb=0.0)), teacher.cfg, teacher.cfg)(t_out, t_out)
    assert set(same) == {"distill_spec", "distill_erb_gains", "distill_df"}
    assert all(float(v) == 0.0 for v in same.values())
    terms = loss(student(wave), t_out)
    assert set(terms) == {"distill_spec", "distill_erb_gains", "distill_df", "distill_emb"}
    sum(terms.values()).backward()
    assert loss.proj.weight.grad is not None and student.encoder.parameters().__next__().grad is not None


def test_teacher_and_student_need_the_same_dsp():
    other = dataclasses.replace(ModelConfig.tiny(), dsp=DspConfig(lookahead=1), df_orders=(3, 5))
    with pytest.raises(ConfigError, match="same DSP"):
        DistillLoss(DistillConfig(), ModelConfig.tiny(), other)
