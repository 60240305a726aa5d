"""shrink: a smaller DFN4 cut from a trained one keeps exactly what fits, and fails clearly otherwise."""

import dataclasses

import pytest
import torch
from testaudio import make_noisy

from dfn4core.config import ModelConfig
from dfn4core.errors import ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.shrink import drop_erb_temporal, drop_views, shrink, top_units
from dfn4core.train.warm_start import distill_to_teacher, fit_temporal

# A tiny teacher shaped like the full (two GRU layers in each decoder, orders 3, 5, 7) and its lite.
TEACHER = dataclasses.replace(ModelConfig.tiny(), temporal="gru", emb_dim=32, erb_dec_layers=2, df_dec_layers=2,
                              df_orders=(3, 5, 7))  # fmt: skip
STUDENT = dataclasses.replace(TEACHER, emb_dim=16, erb_dec_layers=1, df_dec_layers=1, df_orders=(3, 5), wave_ch=4,
                              attn_dim=8)  # fmt: skip


def teacher_model(seed: int = 0) -> DFN4:
    torch.manual_seed(seed)
    model = DFN4(TEACHER).eval()
    with torch.no_grad():  # make the views and every order count, so that a misplaced weight shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def wave(seconds: float = 0.3, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(make_noisy(seconds, seed=seed)).float()


def run(model: DFN4, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x).wave


def test_same_config_is_a_copy():
    teacher = teacher_model()
    x = wave()
    assert torch.equal(run(shrink(teacher, DFN4(TEACHER)), x), run(teacher, x))


def test_fewer_orders_keep_the_first_orders_filter():
    """With the teacher's order 7 switched off (and half of each pathway group unused, as the
    pathway of a DFN3 import is), cutting them away changes nothing."""
    teacher = teacher_model()
    unused = torch.tensor([1, 3, 4, 8, 9, 10, 12, 15, 17, 18, 21, 23, 25, 28])  # 7 of each group of 15
    with torch.no_grad():
        teacher.df_decoder.pathway.point.weight[:, unused] = 0
        teacher.order_predictor.base.copy_(torch.tensor([0.0, 0.0, -60.0]))
        teacher.order_predictor.logits.weight.zero_()
        teacher.order_predictor.logits.bias.zero_()
    student = shrink(teacher, DFN4(dataclasses.replace(TEACHER, df_orders=(3, 5))))
    x = wave()
    ref = run(teacher, x)
    assert ref.abs().max() > 1e-3
    torch.testing.assert_close(run(student, x), ref, atol=1e-5, rtol=1e-4)


def test_narrower_blocks_keep_the_units_that_carry_the_output():
    """Units with no outgoing weights and no influence on the others are the ones cut, and the
    cut model computes the teacher exactly: every index of the cut lines up."""
    teacher = teacher_model()
    narrow = dataclasses.replace(TEACHER, emb_dim=16)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name in ("encoder.temporal", "erb_decoder.temporal", "df_decoder.temporal"):
            block = teacher.get_submodule(name)
            groups = block.linear_in.groups
            per_group = 32 // groups
            # Drop half of each group's input units and hidden units (random positions).
            drop_in = torch.cat([g * per_group + torch.randperm(per_group, generator=gen)[: per_group // 2] for g in range(groups)])
            out_groups = 4  # lin_groups of the readers (linear_out, the DF decoder's out and skip)
            per_out = 32 // out_groups
            drop_h = torch.cat([g * per_out + torch.randperm(per_out, generator=gen)[: per_out // 2] for g in range(out_groups)])
            for i, layer in enumerate(block.layers):
                gru = layer.gru
                gru.weight_ih_l0[:, drop_in if i == 0 else drop_h] = 0  # dropped inputs feed nothing
                gru.weight_hh_l0[:, drop_h] = 0  # dropped units feed no kept unit
            reader = block.linear_out if block.linear_out is not None else teacher.df_decoder.out
            weight = reader.weight.view(-1, reader.weight.shape[-1])  # (inputs of all groups, outputs per group)
            weight[drop_h] = 0
    student = shrink(teacher, DFN4(narrow))
    x = wave()
    torch.testing.assert_close(run(student, x), run(teacher, x), atol=1e-5, rtol=1e-4)


def test_lite_from_full_shapes_and_fit():
    """The full-shaped teacher cut to its lite: it runs, and fitting its blocks to the teacher works
    although the student has fewer DF orders."""
    teacher = teacher_model()
    student = shrink(teacher, DFN4(STUDENT))
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())
    assert torch.all(student.encoder.attention.out.weight == 0)  # the narrower attention starts silent
    x = wave(0.4, seed=5)
    assert torch.isfinite(run(student, x)).all()
    history = []
    fit_temporal(student, teacher, iter([x] * 12), steps=12, lr=5e-3, on_step=lambda s, l: history.append(l))
    assert set(history[0]) == {"encoder.temporal", "erb_decoder.temporal", "df_decoder"}
    assert sum(history[-1].values()) < sum(history[0].values())


def test_a_student_without_views_is_cut_from_a_teacher_with_them():
    student = shrink(teacher_model(), DFN4(dataclasses.replace(STUDENT, views=False)))
    assert not hasattr(student.encoder, "attention") and not hasattr(student.encoder, "waveform")
    x = wave(0.4, seed=5)
    assert torch.isfinite(run(student, x)).all()


def test_dropping_silent_views_keeps_the_output_and_live_ones_change_it():
    teacher = teacher_model()
    live = drop_views(teacher)
    assert not live.cfg.views
    assert live.cfg == dataclasses.replace(TEACHER, views=False, wave_ch=32, wave_kernel=32, attn_dim=64, attn_heads=4)
    x = wave(0.4, seed=3)
    assert (run(live, x) - run(teacher, x)).abs().max() > 1e-4  # the attention added something
    with torch.no_grad():
        teacher.encoder.attention.out.weight.zero_()
        teacher.encoder.attention.out.bias.zero_()
    silent = drop_views(teacher)
    torch.testing.assert_close(run(silent, x), run(teacher, x), atol=1e-6, rtol=0)
    dropped = sum(p.numel() for n, p in teacher.named_parameters() if n.startswith(("encoder.waveform",
                  "encoder.phase", "encoder.attention")))  # fmt: skip
    assert sum(p.numel() for p in silent.parameters()) == sum(p.numel() for p in teacher.parameters()) - dropped
    with pytest.raises(ConfigError, match="no waveform and phase views"):
        drop_views(silent)


def test_a_student_without_erb_decoder_layers_is_cut_and_fits():
    """The lite's layout (no temporal layers in the ERB decoder) is cut from a full-shaped teacher:
    its input and output layers are selections of the teacher's, it runs, and it fits."""
    teacher = teacher_model()
    student = shrink(teacher, DFN4(dataclasses.replace(STUDENT, erb_dec_layers=0, views=False)))
    assert len(student.erb_decoder.temporal.layers) == 0
    dst, src = student.erb_decoder.temporal, teacher.erb_decoder.temporal
    for layer in ("linear_in", "linear_out"):  # each group's weights: a selection of the teacher's
        for d, t in zip(getattr(dst, layer).weight, getattr(src, layer).weight):
            rows = [t[i] for i in range(t.shape[0])] if layer == "linear_out" else [t[:, j] for j in range(t.shape[1])]
            kept = [d[i] for i in range(d.shape[0])] if layer == "linear_out" else [d[:, j] for j in range(d.shape[1])]
            assert all(any(torch.equal(k, r) for r in rows) for k in kept)
    x = wave(0.4, seed=5)
    assert torch.isfinite(run(student, x)).all()
    history = []
    fit_temporal(student, teacher, iter([x] * 12), steps=12, lr=5e-3, on_step=lambda s, l: history.append(l))
    # The ERB decoder's block is still fitted: its input and output layers to the teacher block's output.
    assert set(history[0]) == {"encoder.temporal", "erb_decoder.temporal", "df_decoder"}
    assert history[-1]["erb_decoder.temporal"] < history[0]["erb_decoder.temporal"]


def test_a_one_layer_student_reads_its_input_with_the_teachers_last_layer():
    """The student's single GRU is the teacher's last one, so the input layer's units it keeps are
    those that layer weighs most (not the teacher's first layer, which reads linear_in there)."""
    teacher = teacher_model()
    student = shrink(teacher, DFN4(STUDENT))
    src, dst = teacher.erb_decoder.temporal, student.erb_decoder.temporal
    groups, hidden = src.linear_in.groups, STUDENT.emb_dim
    units = top_units(src.layers[-1].gru.weight_ih_l0.norm(dim=0), groups, hidden // groups)
    per_group = src.linear_in.weight.shape[2]
    expected = torch.stack([src.linear_in.weight[g][:, units[units // per_group == g] - g * per_group]
                            for g in range(groups)])  # fmt: skip
    torch.testing.assert_close(dst.linear_in.weight, expected, rtol=0, atol=0)


def test_dropping_the_erb_decoder_layers_keeps_every_other_weight():
    teacher = teacher_model()
    dropped = drop_erb_temporal(teacher)
    assert dropped.cfg == dataclasses.replace(TEACHER, erb_dec_layers=0)
    source = teacher.state_dict()
    for name, value in dropped.state_dict().items():
        torch.testing.assert_close(value, source[name], rtol=0, atol=0)
    gru = sum(p.numel() for n, p in teacher.named_parameters() if n.startswith("erb_decoder.temporal.layers"))
    assert sum(p.numel() for p in dropped.parameters()) == sum(p.numel() for p in teacher.parameters()) - gru
    x = wave(0.3, seed=4)
    assert torch.isfinite(run(dropped, x)).all()
    with pytest.raises(ConfigError, match="no temporal layers to drop"):
        drop_erb_temporal(dropped)


def test_distill_warmup_starts_with_small_steps():
    """With a warm-up, AdamW's first step moves the weights by the warm-up's fraction of what it
    moves them without one."""
    teacher, x = teacher_model(), wave(0.3, seed=7)

    def first_step_change(warmup: int) -> float:
        student = shrink(teacher, DFN4(STUDENT))
        before = [p.detach().clone() for p in student.parameters()]
        distill_to_teacher(student, teacher, iter([x]), steps=1, lr=1e-3, warmup_steps=warmup)
        return sum(float((p.detach() - b).abs().sum()) for p, b in zip(student.parameters(), before))

    plain, warm = first_step_change(0), first_step_change(100)
    assert plain > 0
    assert warm == pytest.approx(plain / 100, rel=0.05)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"temporal": "mamba"}, "temporal"),
        ({"conv_ch": 16}, "conv_ch"),
        ({"df_orders": (5, 7)}, "DF orders"),
        ({"emb_dim": 64}, "emb_dim"),
        ({"erb_dec_layers": 3}, "more layers"),
    ],
)
def test_what_cannot_be_cut_is_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        shrink(teacher_model(), DFN4(dataclasses.replace(TEACHER, **change)))


def test_top_units_picks_the_largest_of_each_group():
    importance = torch.tensor([0.1, 0.9, 0.5, 0.2, 3.0, 0.0, 1.0, 2.0])
    assert top_units(importance, groups=2, keep=2).tolist() == [1, 2, 4, 7]
    with pytest.raises(ConfigError, match="cannot keep"):
        top_units(importance, groups=2, keep=5)
