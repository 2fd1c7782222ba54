"""Decoder-only backbones: detection, last-token pooling, pad tokens, and the generative scorer's Yes-No logit."""

from __future__ import annotations

import pytest
import torch

from coldstart_peft import TrainGroup, build_scorer, create_host
from coldstart_peft.decoder import is_decoder, last_token_index, pool, resolve_pooling
from coldstart_peft.prompts import render

HOST = create_host(load_entrypoints=False)
USERS = ["likes red lipstick ; clicked red soap", "likes blue cream", "clicked gold brush"]
ITEMS = ["red cream", "blue soap soap soap soap", "gold perfume"]


def test_decoders_are_told_from_encoders(tiny_decoders, tiny_base):
    from transformers import AutoConfig

    assert all(is_decoder(AutoConfig.from_pretrained(folder)) for folder in tiny_decoders.values())
    assert not is_decoder(AutoConfig.from_pretrained(tiny_base))


def test_last_token_pooling_picks_the_last_real_token_under_left_and_right_padding():
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float32).reshape(2, 5, 1)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(right).tolist() == [2, 4]
    assert last_token_index(left).tolist() == [4, 4]
    assert pool(hidden, right, "last").squeeze(-1).tolist() == [2.0, 9.0]
    assert pool(hidden, left, "last").squeeze(-1).tolist() == [4.0, 9.0]
    # Virtual tokens of prompt methods sit in front: the last real token moves with them.
    assert pool(torch.arange(7.0).reshape(1, 7, 1), right[:1], "last").item() == 4.0


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_decoders_pool_the_last_token_and_pad_without_changing_an_embedding(tiny_decoders, kind):
    scorer = build_scorer("bi-encoder", tiny_decoders[kind], {"max_length": 48}, host=HOST)
    assert scorer.pooling == "last" and resolve_pooling("auto", scorer.backbone) == "last"
    assert scorer.tokenizer.pad_token is not None and scorer.tokenizer.padding_side == "right"
    alone = scorer.encode(["likes red lipstick"])
    padded = scorer.encode(["likes red lipstick", "likes red lipstick ; clicked gold brush and blue cream"])
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=1e-5)


def test_an_encoder_keeps_mean_pooling(tiny_base):
    assert build_scorer("bi-encoder", tiny_base, {"max_length": 48}, host=HOST).pooling == "mean"
    assert build_scorer("bi-encoder", tiny_base, {"max_length": 48, "pooling": "last"}, host=HOST).pooling == "last"


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_generative_score_is_the_yes_minus_no_logit_of_the_causal_lm(tiny_decoders, kind):
    """By hand: the full causal LM's next-token logits at the prompt's end, Yes minus No."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    scorer = build_scorer("generative", tiny_decoders[kind], {"max_length": 64}, host=HOST)
    scorer.precision = "fp32"
    scores = scorer.score(USERS, ITEMS)  # one batch, so the shorter prompts are padded
    lm = AutoModelForCausalLM.from_pretrained(tiny_decoders[kind]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoders[kind])
    yes, no = tokenizer(" yes", add_special_tokens=False)["input_ids"][0], tokenizer(" no", add_special_tokens=False)["input_ids"][0]
    for user, item, score in zip(USERS, ITEMS, scores):
        ids = tokenizer(render(scorer.config.template, user, item), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = lm(ids).logits[0, -1]
        assert score == pytest.approx(float(logits[yes] - logits[no]), abs=1e-4)


def test_generative_scorer_reads_the_mask_token_of_an_encoder(tiny_base):
    # The tiny BERT's vocabulary has no yes/no; any two words it knows serve as the answers.
    scorer = build_scorer("generative", tiny_base, {"max_length": 64, "yes": "gold", "no": "grey"}, host=HOST)
    assert scorer.template.endswith("[MASK]")
    scores = scorer.score(USERS, ITEMS)
    assert scores.shape == (3,) and len(set(scores.tolist())) == 3


@pytest.mark.parametrize("scorer_name", ["bi-encoder", "cross-encoder", "generative"])
def test_groups_without_a_positive_train_pointwise(tiny_base, scorer_name):
    """A labeled-pairs file of independent pairs (half of them negatives) trains every scorer."""
    groups = [TrainGroup(u, [i], [float(n % 2)]) for n, (u, i) in enumerate(zip(USERS * 4, ITEMS * 4))]
    config = {"max_length": 48, **({"yes": "gold", "no": "grey"} if scorer_name == "generative" else {})}
    scorer = build_scorer(scorer_name, tiny_base, config, host=HOST)
    loss = scorer.compute_loss(scorer.collate(groups))
    assert torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    assert all(p.grad is not None for n, p in scorer.named_parameters() if n in ("bias", "answer", "head.bias"))


@pytest.mark.parametrize("kind", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("method", ["lora", "ia3", "bottleneck"])
def test_methods_find_each_decoders_layers(kind, method):
    """BERT-named defaults become the architecture's own projections; nothing else is touched."""
    from _decoders import tiny_decoder_model

    model = tiny_decoder_model(kind).base_model
    for p in model.parameters():
        p.requires_grad_(False)
    chosen = HOST.method(method)()
    prepared = chosen.prepare(model, chosen.config, total_steps=10)
    trainable = [n for n, p in prepared.named_parameters() if p.requires_grad]
    expected = {
        "lora": {"llama": "q_proj.lora_A", "qwen2": "v_proj.lora_B", "gpt2": "c_attn.lora_A"},
        "ia3": {"llama": "mlp.down_proj.ia3_l", "qwen2": "k_proj.ia3_l", "gpt2": "mlp.c_proj.ia3_l"},
        "bottleneck": {"llama": "mlp.down_proj.adapter.up", "qwen2": "self_attn.o_proj.adapter.down",
                       "gpt2": "attn.c_proj.adapter.up"},
    }[method][kind]  # fmt: skip
    assert any(expected in n for n in trainable), trainable
    out = prepared(input_ids=torch.tensor([[3, 4, 5]]), attention_mask=torch.ones(1, 3, dtype=torch.long)).last_hidden_state
    out.sum().backward()


def test_target_modules_that_match_nothing_name_the_layers_to_choose_from():
    from _decoders import tiny_decoder_model

    from coldstart_peft.targets import TargetModulesError

    model = tiny_decoder_model("llama").base_model
    lora = HOST.method("lora")({"target_modules": ["query"]})  # chosen, so never replaced
    with pytest.raises(TargetModulesError, match="q_proj"):
        lora.prepare(model, lora.config)


def test_load_options_reach_from_pretrained_so_a_big_backbone_loads_in_bf16(tiny_decoders):
    from coldstart_peft.errors import ConfigError
    from coldstart_peft.load_options import check_load_options

    scorer = build_scorer("cross-encoder", tiny_decoders["llama"], {"max_length": 48}, host=HOST,
                          load_options={"torch_dtype": "bfloat16", "device_map": "cpu"})  # fmt: skip
    assert next(scorer.backbone.parameters()).dtype == torch.bfloat16
    scorer.precision = "fp32"
    assert scorer.score(USERS, ITEMS).shape == (3,)
    with pytest.raises(ConfigError, match="device_map"):
        check_load_options({"device-map": "auto"})


def test_load_options_recorded_in_the_manifest_are_used_again_unless_overridden(tiny_decoders, tmp_path):
    import json

    from coldstart_peft import load_adapter, save_adapter
    from coldstart_peft.assembly import apply_method, make_method
    from coldstart_peft.errors import ConfigError, CorruptAdapterError

    scorer = build_scorer("cross-encoder", tiny_decoders["llama"], {"max_length": 48}, host=HOST,
                          load_options={"torch_dtype": "bfloat16"})  # fmt: skip
    apply_method(scorer, make_method("lora", {"r": 2}, HOST))
    with torch.no_grad():  # non-identity adapter weights, so the round trip has something to carry
        for name, parameter in scorer.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    scorer.precision = "fp32"
    before = scorer.score(USERS, ITEMS)
    folder = save_adapter(scorer, tmp_path / "adapter")
    manifest = json.loads((folder / "coldstart.json").read_text())
    assert manifest["base_model"]["load_options"] == {"dtype": "bfloat16"}

    again = load_adapter(folder, host=HOST)
    assert next(again.backbone.parameters()).dtype == torch.bfloat16
    again.precision = "fp32"
    assert again.score(USERS, ITEMS).tolist() == pytest.approx(before.tolist(), abs=1e-6)
    overridden = load_adapter(folder, host=HOST, load_options={"dtype": "float32"})
    assert next(overridden.backbone.parameters()).dtype == torch.float32
    with pytest.raises(ConfigError, match="device-map"):
        load_adapter(folder, host=HOST, load_options={"device-map": "cpu"})

    manifest["base_model"]["load_options"] = {"dtype": "int3"}
    (folder / "coldstart.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptAdapterError, match="load_options"):
        load_adapter(folder, host=HOST)


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory) -> dict[bool, str]:
    """Tiny random T5 folders, tied (original T5, scaled decoder output) and untied (T5 v1.1)."""
    from _decoders import save_tiny_t5

    return {tied: str(save_tiny_t5(tmp_path_factory.mktemp(f"tiny-t5-{tied}"), tied)) for tied in (True, False)}


@pytest.mark.parametrize("tied", [True, False])
def test_generative_score_on_t5_is_the_yes_minus_no_logit_of_the_first_decoder_step(tiny_t5, tied):
    """By hand: T5ForConditionalGeneration's logits at decoder step 0 (after the start token), Yes minus No."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    scorer = build_scorer("generative", tiny_t5[tied], {"max_length": 64}, host=HOST)
    scorer.precision = "fp32"
    assert scorer.seq2seq and not scorer.template.endswith("[MASK]")
    scores = scorer.score(USERS, ITEMS)  # one batch: the shorter prompts are padded in the encoder
    lm = T5ForConditionalGeneration.from_pretrained(tiny_t5[tied]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_t5[tied])
    yes, no = tokenizer.convert_tokens_to_ids(["yes", "no"])
    for user, item, score in zip(USERS, ITEMS, scores):
        ids = tokenizer(render(scorer.config.template, user, item), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = lm(input_ids=ids, decoder_input_ids=torch.tensor([[lm.config.decoder_start_token_id]])).logits[0, 0]
        assert score == pytest.approx(float(logits[yes] - logits[no]), abs=1e-4)


def test_lora_on_t5_trains_the_generative_scorer_and_round_trips(tiny_t5, toy_task, tmp_path):
    from coldstart_peft import TrainConfig, load_adapter, save_adapter, train
    from coldstart_peft.assembly import apply_method, make_method

    groups = toy_task[0][:12]
    scorer = build_scorer("generative", tiny_t5[False], {"max_length": 48}, host=HOST)
    method = make_method("lora", {"r": 4}, HOST)
    apply_method(scorer, method)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in scorer.backbone.named_parameters() if "lora_A" in n}
    assert adapted == {"q", "v"}  # T5's own names for the attention's query and value
    batch = scorer.collate(groups)
    with torch.no_grad():
        before = float(scorer.compute_loss(batch))
    train(scorer, method, groups, None, TrainConfig(epochs=4, batch_size=6, lr=3e-2, precision="fp32", progress=False))
    scorer.eval()
    with torch.no_grad():
        after = float(scorer.compute_loss(batch))
    assert after < before - 0.05, (before, after)
    scorer.precision = "fp32"
    scores = scorer.score(USERS, ITEMS)
    again = load_adapter(save_adapter(scorer, tmp_path / "t5"), host=HOST)
    again.precision = "fp32"
    assert again.score(USERS, ITEMS).tolist() == pytest.approx(scores.tolist(), abs=1e-6)
