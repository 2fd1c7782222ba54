"""The shipped contract kit catches what it promises to: a method that saves only part of its weights fails it."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from coldstart_peft import Method
from coldstart_peft.testing import ContractFailure, check_method

FILE = "biases.safetensors"


class ForgetfulBitFit(Method):
    """Trains every bias but saves only the first one: the bug the reload clause exists for."""

    name = "forgetful-bitfit"
    recommended_lr = 5e-2

    def prepare(self, model, config, *, total_steps=None):
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.endswith(".bias"))
        return model

    def save(self, model, directory):
        first = next((n, p) for n, p in model.named_parameters() if n.endswith(".bias"))
        save_file({first[0]: first[1].detach().contiguous()}, str(Path(directory) / FILE))

    def load(self, model, directory):
        model.load_state_dict(load_file(str(Path(directory) / FILE)), strict=False)
        return model

    def weight_files(self):
        return [FILE]


@pytest.mark.slow
def test_a_method_that_drops_weights_on_save_breaks_the_reload_clause(tiny_base, tmp_path):
    with pytest.raises(ContractFailure) as failure:
        check_method(ForgetfulBitFit, base_model=tiny_base, workdir=tmp_path)
    message = str(failure.value)
    assert "bi-encoder-forgetful-bitfit: scores after reload differ" in message, message
    assert "reported (trainable, total)" not in message  # the clauses it keeps still hold
    assert (tmp_path / "bi-encoder-forgetful-bitfit" / FILE).is_file()  # workdir kept for inspection


def test_an_unknown_method_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="lora"):
        check_method("no-such-method")
