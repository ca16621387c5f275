"""A local transformers causal LM (GPU when the actor has one), batched generation."""

from __future__ import annotations

import asyncio

from llm.base import ChatRequest, Completion, Runtime


def render_chat(tokenizer, messages: list[dict[str, str]]) -> str:
    """The model's own chat template when it has one, else a plain role-tagged transcript."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nassistant:"


class HFBackend:
    """`AutoModelForCausalLM.from_pretrained(path_or_id)`; requests are generated in
    batches of `runtime.batch_size` with left padding."""

    template = False

    def __init__(self, model: str, runtime: Runtime, response_format: str = "json_object"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.label = f"hf:{model}"
        self.rt = runtime
        self.constrained = response_format == "json_schema"  # decode to the reply schema
        use_gpu = runtime.num_gpus > 0 and torch.cuda.is_available()
        self.device = torch.device("cuda" if use_gpu else "cpu")
        from llm.packaged_models import resolve

        model_dir = resolve(model)  # packaged:smollm2 -> its converted folder
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = torch.float16 if use_gpu else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        self.model = self.model.to(self.device)
        self.model.eval()

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]:
        out: list[Completion] = []
        for i in range(0, len(requests), self.rt.batch_size):
            out += await asyncio.to_thread(self._generate, requests[i : i + self.rt.batch_size])
        return out

    def _generate(self, batch: list[ChatRequest]) -> list[Completion]:
        import torch

        prompts = [render_chat(self.tokenizer, r.messages) for r in batch]
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        enc = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=not templated,  # a chat template already adds BOS
            return_token_type_ids=False,
        ).to(self.device)
        sampling = (
            {"do_sample": True, "temperature": self.rt.temperature}
            if self.rt.temperature > 0
            else {"do_sample": False}
        )
        torch.manual_seed(self.rt.seed)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.rt.max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
                **self._constraint(batch, enc["input_ids"].shape[1]),
            )
        new = out[:, enc["input_ids"].shape[1] :]
        stops = self._stop_ids()
        results = []
        for row, mask in zip(new, enc["attention_mask"], strict=True):
            ids = row.tolist()
            cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
            ids = ids[:cut]
            ids = [t for t in ids if t != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            results.append(Completion(text, int(mask.sum()), len(ids)))
        return results

    def _constraint(self, batch: list[ChatRequest], prompt_len: int) -> dict:
        """With ``response_format: json_schema``, each JSON request decodes only what its
        reply schema allows (`llm.constrained`); the rest of the batch decodes freely."""
        schemas = [r.schema if self.constrained and r.json else None for r in batch]
        if not any(s is not None for s in schemas):
            return {}
        from transformers import LogitsProcessorList

        from llm.constrained import JsonSchemaLogits

        eos = self.tokenizer.eos_token_id
        rule = JsonSchemaLogits(self.tokenizer, schemas, prompt_len, eos)
        return {"logits_processor": LogitsProcessorList([rule])}

    def _stop_ids(self) -> set[int]:
        """Every id generation stops at: the tokenizer's EOS and the generation config's
        (which may be a list, e.g. Llama 3 Instruct)."""
        ids = {self.tokenizer.eos_token_id}
        eos = self.model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
        ids.discard(None)
        return ids

    async def aclose(self) -> None:
        return None
