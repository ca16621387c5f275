"""The continuous batch (`llm.continuous`) on a tiny random GPT-2 saved and loaded back
through `from_pretrained`: each reply is what `generate` writes for that prompt alone,
rows that end are refilled while others decode, the schema constraint follows rows as
they come and go, and a failing request fails alone."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from llm.continuous import DecodeLoop, generate, supports

VOCAB, PAD = 64, 0
PROMPTS = [[5, 9, 11], [7] * 12, [3, 4], [20, 21, 22, 23, 24, 25, 26], [8], [30, 31, 32, 33]]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    cfg = GPT2Config(
        vocab_size=VOCAB, n_positions=256, n_embd=32, n_layer=2, n_head=2, bos_token_id=1
    )
    cfg.eos_token_id = None  # the stop ids are each test's
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    return AutoModelForCausalLM.from_pretrained(folder).eval()


def alone(lm, prompt: list[int], max_new: int, stops: set[int]) -> list[int]:
    """`generate` on the prompt alone, greedy, cut before the first stop id."""
    out = lm.generate(
        torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        max_new_tokens=max_new,
        do_sample=False,
        eos_token_id=sorted(stops) or None,
        pad_token_id=PAD,
    )[0, len(prompt) :].tolist()
    ends = [i for i, t in enumerate(out) if t in stops]
    return out[: ends[0]] if ends else out


def stop_tokens(lm, max_new: int) -> set[int]:
    """Stop ids that end the replies at different steps: every token a free reply writes
    but none starts with (this random model repeats a token, then may switch)."""
    free = [alone(lm, p, max_new, set()) for p in PROMPTS]
    return {t for r in free for t in r} - {r[0] for r in free}


def test_replies_match_generate_alone_while_rows_leave_and_join(lm):
    assert supports(lm)
    max_new = 12
    stops = stop_tokens(lm, max_new)
    widths = []
    forward = lm.forward

    def spy(*args, **kw):
        widths.append(kw["input_ids"].shape[1])
        return forward(*args, **kw)

    lm.forward = spy
    try:
        loop = DecodeLoop(lm, batch_size=2, max_new_tokens=max_new, stop_ids=stops, pad_id=PAD)
        got = generate(loop, PROMPTS)
        loop.close()
    finally:
        del lm.forward
    assert got == [alone(lm, p, max_new, stops) for p in PROMPTS]
    assert len({len(r) for r in got}) > 1  # rows really ended apart
    # prompts were prefilled after decoding had begun: slots were refilled mid-batch
    first_decode = widths.index(1)
    assert any(w > 1 for w in widths[first_decode:])
    # fewer model calls than fixed batches of 2 stepping to their longest reply
    fixed = sum(
        1 + max(min(len(r) + 1, max_new) for r in got[i : i + 2]) - 1 for i in range(0, len(got), 2)
    )
    assert len(widths) < fixed + len(PROMPTS)


def test_sampling_is_seeded_and_the_penalty_changes_replies(lm):
    def run(**kw):
        loop = DecodeLoop(lm, batch_size=3, max_new_tokens=10, stop_ids=set(), pad_id=PAD, **kw)
        out = generate(loop, PROMPTS)
        loop.close()
        return out

    assert run(temperature=1.0, seed=3) == run(temperature=1.0, seed=3)
    assert run(temperature=1.0, seed=3) != run(temperature=1.0, seed=4)
    greedy, penalised = run(), run(repetition_penalty=5.0)
    assert greedy != penalised
    # a strong penalty keeps a reply from repeating its own tokens
    assert max(max(Counter(r).values()) for r in penalised) < max(
        max(Counter(r).values()) for r in greedy
    )


def test_a_schema_follows_its_row_as_the_batch_changes():
    """Rows with a schema decode only what it allows and end when it is complete; rows
    without decode as they do alone; in one batch of 2 whose rows come and go (SmolLM2's
    tokenizer, from the GGUF the package ships, on a tiny random GPT-2 of its vocabulary)."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from llm.constrained import SchemaMasks
    from llm.packaged_models import gguf_path

    gguf = gguf_path("smollm2")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=2, n_head=2)
    lm = GPT2LMHeadModel(cfg).eval()
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "blue"]}},
        "required": ["colour"],
        "additionalProperties": False,
        "x-guidance": {"whitespace_flexible": False},
    }
    texts = ["a cat", "a red house by the sea", "x", "mountains at dusk", "q"]
    prompts = [tok(t)["input_ids"] for t in texts]
    schemas = [schema, None, schema, None, schema]
    eos = tok.eos_token_id

    def loop(masks=None, batch=2):
        return DecodeLoop(lm, batch, 20, {eos}, eos, masks=masks)

    got = generate(loop(SchemaMasks(tok, eos)), prompts, schemas)
    for reply, s in zip(got, schemas, strict=True):
        if s is not None:
            assert json.loads(tok.decode(reply))["colour"] in ("red", "blue")
            assert len(reply) < 20  # ended when the object closed
    free = [generate(loop(batch=1), [p])[0] for p in prompts]
    assert [g for g, s in zip(got, schemas, strict=True) if s is None] == [
        f for f, s in zip(free, schemas, strict=True) if s is None
    ]
    assert all(len(f) == 20 for f in free)  # unconstrained, this model never ends


def test_a_failing_request_fails_alone_and_the_loop_goes_on(lm):
    loop = DecodeLoop(lm, batch_size=4, max_new_tokens=5, stop_ids=set(), pad_id=PAD)
    bad = loop.submit([VOCAB + 100])  # an id past the embedding table
    with pytest.raises(IndexError):
        bad.result(timeout=60)
    good = loop.submit(PROMPTS[0]).result(timeout=60)
    assert good == alone(lm, PROMPTS[0], 5, set())
    loop.close()
