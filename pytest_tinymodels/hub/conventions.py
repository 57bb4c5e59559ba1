"""What the tiny hub knows about real Hub ids and repos, as data (standard library only).

* :data:`ID_CONFIG_DEFAULTS` — config values an organisation's ids carry by convention, and
  :data:`ID_SIZE_DEFAULTS` — the sizes of its tiny models (a fixture's ``size`` table);
* :data:`MODEL_TYPE_ALIASES`, :data:`TASK_WORDS`, :data:`LIBRARY_ORGS`, :data:`LIBRARY_WORDS` — how a
  stand-in for an id that names no class is guessed from the words of the id (:mod:`.standins`);
* :data:`LIBRARY_LAYOUTS` — the files a library expects in a repo beside the transformers files
  (:mod:`.layouts` writes them);
* :data:`ADAPTER_TASK_TYPES` and :data:`BUILTIN_ADAPTERS` — LoRA adapter repos;
* :data:`DATASET_CONFIG_PREFIXES` — how a dataset config name maps to a dataset format in hints.

Strings in a layout may hold ``{hidden_size}``, ``{max_seq_length}`` or ``{vocab_size}``: they are
filled from the repo's ``config.json`` (a string that is exactly one placeholder becomes an integer).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ADAPTER_TASK_TYPES",
    "BUILTIN_ADAPTERS",
    "DATASET_CONFIG_PREFIXES",
    "ID_CONFIG_DEFAULTS",
    "ID_SIZE_DEFAULTS",
    "LIBRARY_LAYOUTS",
    "LIBRARY_ORGS",
    "LIBRARY_WORDS",
    "LIBRARIES",
    "MODEL_TYPE_ALIASES",
    "TASK_WORDS",
]

#: (id glob, case-insensitive; config values) — the values an id gets unless its declaration sets them.
ID_CONFIG_DEFAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    # TRL's reward models are *ForSequenceClassification with a single score
    ("trl-internal-testing/tiny-*ForSequenceClassification*", {"num_labels": 1}),
)

_TRL_SIZES = {"heads": 4, "kv_heads": 2, "layers": 2, "intermediate": 32, "moe_intermediate": 32, "experts": 4,
              "experts_per_tok": 2}
#: TRL's tiny repos by width: the classes its ``scripts/generate_tiny_models.py`` publishes (decoders, MoE
#: decoders, reward models, vision-language models, encoder-decoders).
TRL_TINY_CLASSES: dict[int, tuple[str, ...]] = {
    8: ("CohereForCausalLM", "Cohere2ForCausalLM", "DeepseekV3ForCausalLM", "FalconMambaForCausalLM",
        "GemmaForCausalLM", "Gemma2ForCausalLM", "GPT2LMHeadModel", "GPTNeoXForCausalLM", "LlamaForCausalLM",
        "MistralForCausalLM", "OPTForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM", "GptOssForCausalLM", "NemotronHForCausalLM", "Llama4ForCausalLM"),
    16: ("LlamaForSequenceClassification", "Qwen2ForSequenceClassification", "Qwen3ForSequenceClassification",
         "Qwen3MoeForSequenceClassification", "Gemma3ForConditionalGeneration", "Gemma4ForConditionalGeneration",
         "PaliGemmaForConditionalGeneration", "Idefics2ForConditionalGeneration", "Idefics3ForConditionalGeneration",
         "SmolVLMForConditionalGeneration", "LlavaForConditionalGeneration", "LlavaNextForConditionalGeneration",
         "InternVLForConditionalGeneration", "Qwen2VLForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration",
         "Qwen3VLForConditionalGeneration", "Qwen3_5ForConditionalGeneration",
         "Qwen3_5MoeForConditionalGeneration",
         # 8 wide in TRL; 16 is the narrowest width whose partial rotary dimension (head dim * 0.5) is even
         "Glm4MoeForCausalLM"),
    24: ("T5ForConditionalGeneration", "BartModel"),
    # 16 wide in TRL; 32 is the narrowest width whose partial rotary dimension (head dim * 0.25) is even
    32: ("GPTNeoXForSequenceClassification",),
}

#: (id glob, case-insensitive; sizes) — the ``size`` table an id gets unless its declaration sets it (every
#: matching entry applies, later ones win). TRL builds its tiny repos with one recipe: 4 heads (2 key/value
#: heads), 2 layers, intermediate size 32, MoE models with 4 experts and 2 per token, at the width of
#: :data:`TRL_TINY_CLASSES`. Tests tune their tolerances on those sizes (peft's ``test_target_parameters``
#: compares the logits of the randn-reinitialised tiny Llama4 with and without a disabled adapter at
#: atol = rtol = 1e-6: float32 noise at width 64 reaches 0.99 of it, at width 8 0.40). Other classes under
#: that organisation keep the default sizes.
ID_SIZE_DEFAULTS: tuple[tuple[str, dict[str, int]], ...] = tuple(
    (f"trl-internal-testing/tiny-{cls}*", {"hidden": width, **_TRL_SIZES})
    for width, classes in TRL_TINY_CLASSES.items() for cls in classes
)

#: Words of real ids that name a model type under another name (normalised: lower case, no - or _).
MODEL_TYPE_ALIASES: dict[str, str] = {
    "minilm": "bert",
    "tinybert": "bert",
    "bge": "bert",
    "e5": "bert",
    "sbert": "bert",
    "splade": "bert",
    "mxbai": "bert",
    "stsb": "bert",
}

#: (words, what they select) — the first entry with a word in the id wins. ``task`` and ``config`` go
#: into the stand-in's spec, ``library`` picks a layout of :data:`LIBRARY_LAYOUTS`.
TASK_WORDS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("reranker", "rerank", "crossencoder", "cross-encoder"),
     {"task": "sequence-classification", "config": {"num_labels": 1}, "library": "sentence-transformers"}),
    (("splade",), {"task": "masked-lm", "library": "sentence-transformers"}),
    (("clip", "siglip", "siglip2"), {"task": "base"}),  # the dual encoder (CLIPModel), as the real repos
)

#: Organisations whose ids are repos of a library (and what their ids default to).
LIBRARY_ORGS: dict[str, dict[str, Any]] = {
    "sentence-transformers": {"library": "sentence-transformers", "task": "base"},
    "sentence-transformers-testing": {"library": "sentence-transformers", "task": "base"},
    "cross-encoder": {"library": "sentence-transformers", "task": "sequence-classification",
                      "config": {"num_labels": 1}},
    "cross-encoder-testing": {"library": "sentence-transformers", "task": "sequence-classification",
                              "config": {"num_labels": 1}},
}

#: Words that make an id a library's repo wherever its organisation is.
LIBRARY_WORDS: dict[str, dict[str, Any]] = {
    "stsb": {"library": "sentence-transformers", "task": "base"},
    "nli": {"library": "sentence-transformers", "task": "base"},
    "paraphrase": {"library": "sentence-transformers", "task": "base"},
    "sentence": {"library": "sentence-transformers", "task": "base"},
}

_ST_VERSION = {"sentence_transformers": "3.4.1", "transformers": "4.48.0", "pytorch": "2.5.1"}

#: library -> task -> files. A task missing from a library's table uses its ``"*"`` entry. JSON files are
#: written with sorted keys; ``config.json`` entries are merged into the model's config.json.
LIBRARY_LAYOUTS: dict[str, dict[str, dict[str, Any]]] = {
    "sentence-transformers": {
        # an embedding model: Transformer + mean Pooling (+ Normalize), as sentence-transformers/all-MiniLM-L6-v2
        "*": {
            "modules.json": [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ],
            "config_sentence_transformers.json": {"__version__": _ST_VERSION, "prompts": {},
                                                  "default_prompt_name": None, "similarity_fn_name": "cosine"},
            "sentence_bert_config.json": {"max_seq_length": "{max_seq_length}", "do_lower_case": False},
            "1_Pooling/config.json": {
                "word_embedding_dimension": "{hidden_size}", "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
                "pooling_mode_lasttoken": False, "include_prompt": True,
            },
        },
        # a cross-encoder (reranker): the classifier itself, the activation in config.json
        "sequence-classification": {
            "config.json": {"sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid",
                                                      "version": "4.1.0"}},
        },
        # a sparse encoder (SPLADE): MLM head + max pooling over the vocabulary
        "masked-lm": {
            "modules.json": [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.sparse_encoder.models.MLMTransformer"},
                {"idx": 1, "name": "1", "path": "1_SpladePooling",
                 "type": "sentence_transformers.sparse_encoder.models.SpladePooling"},
            ],
            "config_sentence_transformers.json": {"__version__": {**_ST_VERSION, "sentence_transformers": "5.0.0"},
                                                  "model_type": "SparseEncoder", "prompts": {},
                                                  "default_prompt_name": None, "similarity_fn_name": "dot"},
            "sentence_bert_config.json": {"max_seq_length": "{max_seq_length}", "do_lower_case": False},
            "1_SpladePooling/config.json": {"pooling_strategy": "max", "activation_function": "relu",
                                            "word_embedding_dimension": "{vocab_size}"},
        },
    },
}
#: Library names a ``library =`` key accepts.
LIBRARIES: tuple[str, ...] = tuple(LIBRARY_LAYOUTS)
#: The longest ``max_seq_length`` a layout writes (real embedding models use 128-512).
MAX_SEQ_LENGTH = 256

#: task of the base model -> peft ``task_type`` of an adapter on it.
ADAPTER_TASK_TYPES: dict[str, str] = {
    "causal-lm": "CAUSAL_LM",
    "seq2seq-lm": "SEQ_2_SEQ_LM",
    "sequence-classification": "SEQ_CLS",
    "token-classification": "TOKEN_CLS",
    "question-answering": "QUESTION_ANS",
    "base": "FEATURE_EXTRACTION",
}

#: Adapter ids served without a declaration (when the built-in ids are on): id -> adapter table.
BUILTIN_ADAPTERS: dict[str, dict[str, Any]] = {
    # TRL's tests load it with AutoPeftModelForCausalLM; the real one is an identity LoRA (B = 0)
    "trl-internal-testing/tiny-PeftModel": {"type": "lora", "base": "trl-internal-testing/tiny-Qwen2ForCausalLM-2.5",
                                            "r": 8},
}

#: Prefixes of dataset config names that only say which variant of a format it is (``standard_preference``).
DATASET_CONFIG_PREFIXES: tuple[str, ...] = ("standard_",)
