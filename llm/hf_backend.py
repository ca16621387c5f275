"""A local transformers causal LM (GPU when the actor has one), batched generation; a
vision-language model (its config has a vision part) also sees a request's images."""

from __future__ import annotations

import asyncio
import io

from llm.base import ChatRequest, Completion, Runtime, with_schema


def render_chat(tokenizer, messages: list[dict[str, str]]) -> str:
    """The model's own chat template when it has one, else a plain role-tagged transcript."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nassistant:"


def is_vision_model(model: str) -> bool:
    """Whether `model` (a path, hub id or ``packaged:`` name) is a vision-language model:
    its config has a vision part (``vision_config``: LLaVA, Qwen2-VL, Idefics3/SmolVLM,
    Gemma 3, PaliGemma, Mllama, ...). Reads the config only."""
    from transformers import AutoConfig

    from llm.packaged_models import resolve

    return getattr(AutoConfig.from_pretrained(resolve(model)), "vision_config", None) is not None


def vision_messages(messages: list[dict], images: int) -> list[dict]:
    """Messages in a processor's chat format (every content a list of parts), with
    `images` image placeholders after the text of the first user message."""
    out, placed = [], False
    for m in messages:
        content = m["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if m["role"] == "user" and not placed:
            parts, placed = [*parts, *[{"type": "image"}] * images], True
        out.append({"role": m["role"], "content": parts})
    return out


def batch_order(requests: list[ChatRequest]) -> list[int]:
    """Request indices grouped by task, then by prompt length (characters), the original
    order breaking ties: what a batch should hold so its rows end near each other and its
    left padding stays short."""

    def size(r: ChatRequest) -> int:
        return sum(len(m["content"]) if isinstance(m["content"], str) else 0 for m in r.messages)

    return sorted(range(len(requests)), key=lambda i: (requests[i].task, size(requests[i]), i))


class HFBackend:
    """`AutoModelForCausalLM.from_pretrained(path_or_id)` (a vision-language model:
    `AutoModelForImageTextToText` and its `AutoProcessor`); requests are generated in
    batches of `runtime.batch_size` with left padding, a request with images on its own."""

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
        self.processor = None
        model_class = AutoModelForCausalLM
        if is_vision_model(model_dir):  # its processor turns images into pixel values
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(model_dir)
            self.tokenizer = self.processor.tokenizer
            model_class = AutoModelForImageTextToText
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = torch.float16 if use_gpu else torch.float32
        self.model = model_class.from_pretrained(model_dir, dtype=dtype)
        self.model = self.model.to(self.device)
        self.model.eval()
        self._loop = None  # the continuous batch, built on first use
        self._generating = asyncio.Lock()

    async def complete(self, requests: list[ChatRequest]) -> list[Completion]:
        """Completions in request order. A text model decodes in one continuous batch
        for the whole actor (`llm.continuous`: a row that ends is refilled by the next
        request, from any call); requests join grouped by task and prompt length
        (`batch_order`). Otherwise (a vision model, a cache that cannot be re-stacked)
        fixed batches of `generate`: a batch steps until its longest reply ends."""
        order = batch_order(requests)
        loop = self._decode_loop()
        if loop is not None:
            jobs = [self._job(requests[j]) for j in order]
            futures = [loop.submit(ids, schema) for ids, schema in jobs]
            got = {}
            for j, (ids, _), future in zip(order, jobs, futures, strict=True):
                got[j] = self._completion(len(ids), await asyncio.wrap_future(future))
            return [got[j] for j in range(len(requests))]
        done: dict[int, Completion] = {}
        async with self._generating:  # one generate at a time, whatever calls are in flight
            for i in range(0, len(order), self.rt.batch_size):
                part = order[i : i + self.rt.batch_size]
                got = await asyncio.to_thread(self._generate, [requests[j] for j in part])
                done.update(zip(part, got, strict=True))
        return [done[j] for j in range(len(requests))]

    def _decode_loop(self):
        """The actor's continuous batch (built on first use), or None where the model
        needs `generate`: a vision model, or a cache that cannot be re-stacked."""
        from llm import continuous

        if self._loop is None:
            self._loop = False
            if self.processor is None and continuous.supports(self.model):
                eos = self.tokenizer.eos_token_id
                masks = None
                if self.constrained:
                    from llm.constrained import SchemaMasks

                    masks = SchemaMasks(self.tokenizer, eos)
                self._loop = continuous.DecodeLoop(
                    self.model,
                    self.rt.batch_size,
                    self.rt.max_tokens,
                    self._stop_ids(),
                    self.tokenizer.pad_token_id,
                    self.rt.temperature,
                    self.rt.repetition_penalty,
                    self.rt.seed,
                    masks,
                )
        return self._loop or None

    def _job(self, r: ChatRequest) -> tuple[list[int], dict | None]:
        """(prompt ids, the reply schema decoding is constrained to, or None)."""
        prompt = render_chat(self.tokenizer, self._messages(r))
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        ids = self.tokenizer(prompt, add_special_tokens=not templated)["input_ids"]
        return ids, r.schema if self.constrained and r.json else None

    def _completion(self, prompt_tokens: int, ids: list[int]) -> Completion:
        ids = [t for t in ids if t != self.tokenizer.pad_token_id]
        return Completion(
            self.tokenizer.decode(ids, skip_special_tokens=True), prompt_tokens, len(ids)
        )

    def _generate(self, batch: list[ChatRequest]) -> list[Completion]:
        if self.processor is None:
            return self._run(batch, self._encode_text(batch))
        plain = [r for r in batch if not r.images]
        done = dict(zip(map(id, plain), self._run(plain, self._encode_vision(plain)), strict=True))
        for r in batch:  # each with its own images
            if r.images:
                done[id(r)] = self._run([r], self._encode_vision([r]))[0]
        return [done[id(r)] for r in batch]

    def _encode_text(self, batch: list[ChatRequest]):
        prompts = [render_chat(self.tokenizer, self._messages(r)) for r in batch]
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=not templated,  # a chat template already adds BOS
            return_token_type_ids=False,
        ).to(self.device)

    def _encode_vision(self, batch: list[ChatRequest]):
        """A vision-language model's inputs: the chat through its processor's template,
        each request's images (decoded here) as pixel values in the model's dtype."""
        from PIL import Image

        if not batch:
            return None
        prompts = [
            self.processor.apply_chat_template(
                vision_messages(self._messages(r), len(r.images)),
                tokenize=False,
                add_generation_prompt=True,
            )
            for r in batch
        ]
        images = [[Image.open(io.BytesIO(b)).convert("RGB") for _, b in r.images] for r in batch]
        shown = {"images": images} if any(images) else {}
        enc = self.processor(text=prompts, return_tensors="pt", padding=True, **shown)
        enc = enc.to(self.device)
        if "pixel_values" in enc:
            enc["pixel_values"] = enc["pixel_values"].to(self.model.dtype)
        return enc

    def _run(self, batch: list[ChatRequest], enc) -> list[Completion]:
        """Generate for encoded requests and decode each up to its first stop id."""
        import torch

        if not batch:
            return []
        sampling = (
            {"do_sample": True, "temperature": self.rt.temperature}
            if self.rt.temperature > 0
            else {"do_sample": False}
        )
        if self.rt.repetition_penalty != 1.0:
            sampling["repetition_penalty"] = self.rt.repetition_penalty
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

    def _messages(self, r: ChatRequest) -> list[dict]:
        """The request's messages; where its reply has a schema that decoding is not
        constrained to, the schema spelt out in the prompt (`llm.base.with_schema`)."""
        if r.json and r.schema is not None and not self.constrained:
            return with_schema(r.messages, r.schema)
        return r.messages

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
        if self._loop:
            self._loop.close()
