"""Runs a Hugging Face export of a Ringlet checkpoint (export/hf.ts) in transformers, for test/export-hf.test.ts.

Reads a JSON request on stdin and writes one JSON answer on stdout. For each folder in "dirs" it loads
AutoTokenizer and AutoModelForCausalLM (local_files_only, computing in float32 whatever the stored dtype)
and returns: the token ids of every text in "texts" (the tokenizer's defaults, special tokens included) and
their decoding; the logits of "sequences" (equal lengths, one batch) as base64 little-endian float32
[batch, length, vocab]; greedy continuations of "prompts" (max_new_tokens, repetition_penalty, the end
token excluded); the stored dtypes and the loaded generation config. With "control", the logits again with
each head's query and key rows reordered from halves to interleaved pairs (the layout llama.cpp's
converter makes), which must change them if the logits check can tell a wrong RoPE layout.
"""

import base64
import json
import sys

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig


def as_base64(logits: torch.Tensor) -> str:
    return base64.b64encode(logits.detach().numpy().astype("<f4").tobytes()).decode("ascii")


def interleave_heads(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """[heads·head_dim, in] rows: head h's (x_i, x_{i+head_dim/2}) pairs made adjacent, as convert_hf_to_gguf.py permutes."""
    rows, cols = weight.shape
    return weight.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def check(directory: str, request: dict) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
    model.eval()
    with safetensors.safe_open(f"{directory}/model.safetensors", "pt") as stored:
        stored_dtypes = sorted({str(stored.get_slice(name).get_dtype()) for name in stored.keys()})
    ids = [tokenizer(text).input_ids for text in request["texts"]]
    answer = {
        "tokenizer_class": type(tokenizer).__name__,
        "ids": ids,
        "decoded": [tokenizer.decode(i) for i in ids],
        "stored_dtypes": stored_dtypes,
        "tied": model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
        "generation_config": model.generation_config.to_diff_dict(),
    }
    sequences = torch.tensor(request["sequences"], dtype=torch.long)
    with torch.no_grad():
        answer["logits"] = as_base64(model(sequences).logits)
        eos = model.config.eos_token_id
        answer["generated"] = []
        for prompt in request["prompts"]:
            greedy = GenerationConfig(
                do_sample=False,
                max_new_tokens=prompt["max_new_tokens"],
                repetition_penalty=prompt["repetition_penalty"],
                eos_token_id=eos,
                pad_token_id=eos,
            )
            ids_in = torch.tensor([prompt["ids"]], dtype=torch.long)
            out = model.generate(ids_in, attention_mask=torch.ones_like(ids_in), generation_config=greedy)
            new = out[0, ids_in.shape[1] :].tolist()
            answer["generated"].append(new[:-1] if new and new[-1] == eos else new)
        if request.get("control"):
            config = model.config
            for layer in model.model.layers:
                attn = layer.self_attn
                attn.q_proj.weight.copy_(interleave_heads(attn.q_proj.weight, config.num_attention_heads))
                attn.k_proj.weight.copy_(interleave_heads(attn.k_proj.weight, config.num_key_value_heads))
            answer["control_logits"] = as_base64(model(sequences).logits)
    return answer


def main() -> None:
    request = json.load(sys.stdin)
    torch.manual_seed(0)
    versions = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }
    results = {d: check(d, {**request, "control": request.get("control") and i == 0}) for i, d in enumerate(request["dirs"])}
    json.dump({"versions": versions, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
