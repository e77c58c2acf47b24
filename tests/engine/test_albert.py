"""Our ALBERT against transformers' AlbertModel (a test dependency only): the same tensor names
and shapes, the same hidden states on the same weights, padded keys ignored; and the processes
that serve never import transformers (nor, for the supervisor, torch)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from realtime.model.albert import Albert
from realtime.model.config import PLBertConfig

transformers = pytest.importorskip("transformers")

KOKORO = PLBertConfig()  # Kokoro v1.0's: 768 wide, 12 heads, 2,048 inner, 12 layers
SMALL = PLBertConfig(hidden_size=32, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=520, num_hidden_layers=3)


def _reference(config: PLBertConfig, vocab: int) -> torch.nn.Module:
    albert = transformers.AlbertConfig(
        vocab_size=vocab, hidden_size=config.hidden_size,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        num_hidden_layers=config.num_hidden_layers, hidden_act="gelu_new")
    return transformers.AlbertModel(albert, add_pooling_layer=False).eval()


@pytest.mark.parametrize("config", [KOKORO, SMALL], ids=["kokoro-v1.0", "small"])
def test_the_tensors_are_albert_models(config: PLBertConfig) -> None:
    ours = Albert(config, 178).state_dict()
    theirs = _reference(config, 178).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


@pytest.mark.parametrize("config", [KOKORO, SMALL], ids=["kokoro-v1.0", "small"])
def test_hidden_states_equal_albert_models_on_the_same_weights(config: PLBertConfig) -> None:
    torch.manual_seed(3)
    reference = _reference(config, 178)
    ours = Albert(config, 178).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 178, (3, 40), generator=g)
    lengths = torch.tensor([40, 23, 7])
    pad = torch.arange(40)[None, :] >= lengths[:, None]
    ids[pad] = 0
    with torch.inference_mode():
        whole = ours(ids[:1], None)
        expected = reference(ids[:1]).last_hidden_state
        assert torch.allclose(whole, expected, atol=2e-5, rtol=1e-4)
        batch = ours(ids, pad)
        theirs = reference(ids, attention_mask=(~pad).long()).last_hidden_state
        for row, n in enumerate(lengths.tolist()):
            assert torch.allclose(batch[row, :n], theirs[row, :n], atol=2e-5, rtol=1e-4)
            # padding changes nothing: the row alone, unpadded
            alone = ours(ids[row:row + 1, :n], None)
            assert torch.allclose(batch[row:row + 1, :n], alone, atol=2e-5, rtol=1e-4)


def test_random_initialisation_is_alberts() -> None:
    torch.manual_seed(0)
    model = Albert(SMALL, 178)
    emb = model.embeddings.word_embeddings.weight.detach()
    assert bool((emb[0] == 0).all())  # the padding id
    assert 0.015 < float(emb[1:].std()) < 0.025
    assert bool((model.embeddings.LayerNorm.weight.detach() == 1).all())
    assert bool((model.encoder.embedding_hidden_mapping_in.bias.detach() == 0).all())


def _imports(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             "print(' '.join(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True)
    return set(out.stdout.split())


def test_the_engine_process_does_not_import_transformers() -> None:
    loaded = _imports("from realtime.engine.runner.local import start_engine\n"
                      "from realtime.engine.ipc.main import engine_main\n"
                      "from realtime.weights.registry import load_model\n"
                      "load_model('tiny-random', device='cpu')")
    assert loaded == {"torch"}


def test_the_supervisor_imports_neither() -> None:
    """``realtime serve``'s own process parses its configuration and spawns the others."""
    assert _imports("from realtime.cli import serve_config\n"
                    "from realtime.server.processes import serve_workers\n"
                    "serve_config(['--model', 'tiny-random', '--workers', '2'])") == set()
