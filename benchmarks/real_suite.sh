#!/usr/bin/env bash
# Run a slice of a real, unmodified third-party test suite (peft's) offline through the tiny hub.
#
# peft's tests load tiny Hub repos by id ("peft-internal-testing/tiny-random-OPTForCausalLM",
# "hf-internal-testing/tiny-random-Gemma3ForCausalLM", ...). Here HF_ENDPOINT points at a closed
# loopback port, so every repo must come from the tiny hub.
#
#   benchmarks/real_suite.sh            # in-process: pytest --tiny-hub
#   benchmarks/real_suite.sh serve      # out-of-process: python -m pytest_tinymodels serve + HF_ENDPOINT
#   benchmarks/real_suite.sh inproc -x  # extra arguments go to pytest
#
# Needs PyPI (pip download/install); installs nothing into the environment: peft's sdist (with its
# tests), peft, accelerate and diffusers go into a temporary directory (kept with KEEP=1).
# Not part of the default test command. pytest-tinymodels must be installed (pip install -e .) so that
# pytest loads the plugin from its entry point.
set -euo pipefail

MODE=${1:-inproc}
shift || true
PEFT_VERSION=${PEFT_VERSION:-0.21.2}
ACCELERATE_VERSION=${ACCELERATE_VERSION:-1.15.0}
DIFFUSERS_VERSION=${DIFFUSERS_VERSION:-0.42.1}   # peft's tests/testing_common.py imports diffusers
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${REAL_SUITE_DIR:-$(mktemp -d -t tiny-real-suite-XXXXXX)}
PYTHON=${PYTHON:-python}
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" != 1 ] && [ -z "${REAL_SUITE_DIR:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== work dir: $WORK"
if [ ! -d "$WORK/peft-$PEFT_VERSION/tests" ]; then
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: "peft==$PEFT_VERSION" -d "$WORK"
    tar xzf "$WORK/peft-$PEFT_VERSION.tar.gz" -C "$WORK"
    touch "$WORK/peft-$PEFT_VERSION/tests/__init__.py"   # the tests use relative imports
fi
if [ ! -d "$WORK/site/parameterized" ]; then
    "$PYTHON" -m pip install -q --no-deps --target "$WORK/site" "peft==$PEFT_VERSION" \
        "accelerate==$ACCELERATE_VERSION" "diffusers==$DIFFUSERS_VERSION" "parameterized==0.9.0"
fi
# what the tests import beside them when the environment lacks it: requests (diffusers checks for it;
# huggingface_hub >= 1.0 no longer brings it), attrs (peft's CorDA module imports it)
for module_package in requests:requests attr:attrs; do
    if ! "$PYTHON" -c "import ${module_package%%:*}" 2>/dev/null && [ ! -d "$WORK/site-extra/${module_package%%:*}" ]; then
        "$PYTHON" -m pip install -q --target "$WORK/site-extra" "${module_package#*:}"
    fi
done

# Ids peft uses whose names follow no built-in rule; the tiny-random-<Class> ones need no entry. Adapter repos
# are tiny LoRA adapters on tiny bases; revisions name the same content. MANIFEST_EXTRA: more [hub.ids] lines.
cat > "$WORK/fixtures.toml" <<'EOF'
[hub]
stand_ins = ["google/flan-t5-*", "gpt2", "tiiuae/falcon-mamba-*", "bert-base-uncased"]   # real checkpoints whose architecture is all a test needs

[hub.ids]
"peft-internal-testing/tiny-dummy-qwen2" = "Qwen2ForCausalLM"
"peft-internal-testing/tiny-random-T5ForConditionalGeneration-calibrated" = "T5ForConditionalGeneration"
# the dimensions tests rely on: opt-125m's embedding size 768 and 12 layers (24 q/v projections: more than the
# 20 target modules that trigger peft's target-module optimisation), the real tiny-random repos' 5 layers, OPT's hidden size 16,
# and OPT's real vocabulary size asked of the tokenizer (the corpus gives ~5,350 pieces): with 512 the greedy
# generation of the 16-wide OPT does not change under an adapter (test_mixed::test_decoder_model, test_xlora)
"peft-internal-testing/opt-125m" = { architecture = "OPTForCausalLM", config = { hidden_size = 768, word_embed_proj_dim = 768, num_attention_heads = 12, num_hidden_layers = 12, ffn_dim = 64 } }
"peft-internal-testing/tiny-random-OPTForCausalLM" = { architecture = "OPTForCausalLM", config = { hidden_size = 16, word_embed_proj_dim = 16, num_attention_heads = 4, num_hidden_layers = 5, ffn_dim = 4 }, tokenizer = { vocab_size = 50272 } }
"peft-internal-testing/tiny-random-BloomForCausalLM" = { architecture = "BloomForCausalLM", config = { n_layer = 5 } }
"peft-internal-testing/tiny-random-LlamaForCausalLM" = { architecture = "LlamaForCausalLM", config = { hidden_size = 16, intermediate_size = 64, num_attention_heads = 4, num_key_value_heads = 4, num_hidden_layers = 2 } }
"peft-internal-testing/tiny-random-OPTForCausalLM-extended-vocab" = { adapter = { base = "peft-internal-testing/tiny-random-OPTForCausalLM" } }
"peft-internal-testing/tiny-random-BertModel-lora" = { adapter = { base = "hf-internal-testing/tiny-random-BertModel", task_type = "CAUSAL_LM" }, revisions = ["v1.2.3"] }
"peft-internal-testing/tiny-random-BertModel" = { architecture = "BertModel", revisions = ["v2.0.0"] }
"peft-internal-testing/opt-tokenizer-revision" = { adapter = { base = "peft-internal-testing/tiny-random-OPTForCausalLM" }, revisions = ["my-revision"] }
"peft-internal-testing/tiny-opt-lora-revision" = { adapter = { base = "peft-internal-testing/tiny-random-OPTForCausalLM" }, revisions = ["test"] }
"ybelkada/test-st-lora" = { adapter = { base = "peft-internal-testing/tiny-random-OPTForCausalLM" } }
"peft-internal-testing/tiny_WhisperForConditionalGeneration-lora" = { adapter = { base = "WhisperForConditionalGeneration" } }
"Qwen/Qwen2-0.5B" = { architecture = "Qwen2ForCausalLM", config = { vocab_size = 1024 } }   # spare embeddings, as Qwen2's
"peft-internal-testing/tiny-clip-text-2" = "CLIPTextModel"
"hf-internal-testing/tiny-qwen3-moe" = "Qwen3MoeForCausalLM"
"peft-internal-testing/tiny-LlavaForConditionalGeneration" = "LlavaForConditionalGeneration"
# Gemma 4 E2B shares the KV caches of its last layers: 4 layers (sliding, full, sliding, full), the last 2 shared
"peft-internal-testing/tiny-random-gemma4-E2B" = { architecture = "Gemma4ForConditionalGeneration", config = { text_config = { num_hidden_layers = 4, layer_types = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"], num_kv_shared_layers = 2, per_layer_config = { "1" = { head_dim = 32 }, "3" = { head_dim = 32 } } } } }
# transformers' Gemma 3 model tester is 32 wide: the embedding outputs peft bounds by 100 scale with sqrt(width)
"hf-internal-testing/tiny-random-Gemma3ForCausalLM" = { architecture = "Gemma3ForCausalLM", size = { hidden = 32 } }
"peft-internal-testing/tiny_OPTForSequenceClassification-lora" = { adapter = { base = "OPTForSequenceClassification" } }
"peft-internal-testing/tiny_OPTForQuestionAnswering-lora" = { adapter = { base = "OPTForQuestionAnswering" } }
"peft-internal-testing/tiny_OPTForFeatureExtraction-lora" = { adapter = { base = "OPTModel" } }
"peft-internal-testing/tiny_GPT2ForTokenClassification-lora" = { adapter = { base = "GPT2ForTokenClassification" } }
"peft-internal-testing/tiny_T5ForSeq2SeqLM-lora" = { adapter = { base = "T5ForConditionalGeneration" } }
"peft-internal-testing/tiny-OPTForCausalLM-lora" = { adapter = { base = "peft-internal-testing/tiny-random-OPTForCausalLM" } }
"peft-internal-testing/opt-125m-dummy-lora" = { adapter = { base = "peft-internal-testing/opt-125m" } }
"peft-internal-testing/gpt2-lora-random" = { adapter = { base = "peft-internal-testing/tiny-random-gpt2", init_lora_weights = false } }
EOF
printf '%s\n' "${MANIFEST_EXTRA:-}" >> "$WORK/fixtures.toml"
# Dataset repos with named configs for the real datasets peft's tests read (glue's sst2 config, iris, English
# quotes, the cats image): synthetic rows with their columns and splits, laid out by the tiny hub as the Hub lays out parquet repos.
mkdir -p "$WORK/data"
"$PYTHON" - "$WORK/data" <<'PY'
import json, random, sys
out = sys.argv[1]
rng = random.Random(0)
words = "a tiny film with great acting and a dull plot that nobody liked at all".split()
for split, n in (("train", 16), ("validation", 12)):
    with open(f"{out}/sst2_{split}.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"sentence": " ".join(rng.choices(words, k=8)), "label": i % 2, "idx": i}) + "\n")
with open(f"{out}/english_quotes.jsonl", "w") as f:
    for i in range(40):
        f.write(json.dumps({"quote": "\u201c" + " ".join(rng.choices(words, k=12)).capitalize() + ".\u201d",
                            "author": rng.choice(["Ada Lovelace", "Alan Turing", "Grace Hopper"]),
                            "tags": rng.sample(["life", "love", "humor", "truth"], k=2)}) + "\n")
with open(f"{out}/iris.jsonl", "w") as f:
    for i in range(150):
        k = i // 50
        row = [5.0 + k + rng.gauss(0, 0.4), 3.4 - 0.3 * k + rng.gauss(0, 0.3), 1.5 + 2 * k + rng.gauss(0, 0.3), 0.2 + 0.9 * k + rng.gauss(0, 0.2)]
        f.write(json.dumps({"Id": i + 1, "SepalLengthCm": round(row[0], 1), "SepalWidthCm": round(row[1], 1),
                            "PetalLengthCm": round(row[2], 1), "PetalWidthCm": round(row[3], 1),
                            "Species": ["Iris-setosa", "Iris-versicolor", "Iris-virginica"][k]}) + "\n")
PY
cat >> "$WORK/fixtures.toml" <<'EOF'

[hub.datasets."nyu-mll/glue".configs]
sst2 = { data_files = { train = "data/sst2_train.jsonl", validation = "data/sst2_validation.jsonl" } }

[hub.datasets."scikit-learn/iris".configs]
default = { data_files = { train = "data/iris.jsonl" } }

[hub.datasets."ybelkada/english_quotes_copy".configs]
default = { data_files = { train = "data/english_quotes.jsonl" } }   # quote, author, tags

[hub.datasets."huggingface/cats-image".configs]
default = { format = "image_classification" }   # a test split with an image column (load_cat_image)
EOF

CLOSED_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HF_ENDPOINT="http://127.0.0.1:$CLOSED_PORT"   # nothing listens: a request that escapes fails at once
unset HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_DATASETS_OFFLINE
export HF_HUB_CACHE="$WORK/hf-cache" HF_DATASETS_CACHE="$WORK/datasets-cache"
export PYTHONPATH="$WORK/site:$WORK/site-extra:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTEST_TINYMODELS_CACHE=${PYTEST_TINYMODELS_CACHE:-$WORK/tiny-cache}

FILES=${FILES:-"tests/test_decoder_models.py tests/test_encoder_decoder_models.py tests/test_feature_extraction_models.py"}
WORKERS=${WORKERS:-}   # e.g. WORKERS=2: pytest-xdist with that many processes
METHODS="test_generate or test_save_pretrained or test_merge_layers or test_disable_adapter or test_training \
or test_unload_adapter or test_from_pretrained_config_construction or test_inference_safetensors \
or test_delete_adapter or test_adapter_name"
SELECT=${SELECT-"LoraConfig-config_kwargs and ($METHODS) and not (AdaLora or Glora or Gralora or RandLora \
or TinyLora or UniLora or VBLoRA or Vera or Delora or Mora)"}
# peft turns transformers' FutureWarnings into errors; transformers 5.24 deprecates APIs peft still calls.
PYTEST_ARGS=(-o addopts= -W "ignore::FutureWarning" -p no:cacheprovider -q -rfE)
if [ -n "$SELECT" ]; then PYTEST_ARGS+=(-k "$SELECT"); fi   # SELECT= (empty) runs every test of FILES
if [ -n "$WORKERS" ]; then PYTEST_ARGS+=(-n "$WORKERS"); fi

cd "$WORK/peft-$PEFT_VERSION"
start=$(date +%s)
status=0
case "$MODE" in
    inproc)
        "$PYTHON" -m pytest --tiny-hub --tiny-manifest "$WORK/fixtures.toml" "${PYTEST_ARGS[@]}" $FILES "$@" || status=$?
        ;;
    serve)
        "$PYTHON" -m pytest_tinymodels serve --port 0 --manifest "$WORK/fixtures.toml" > "$WORK/serve.out" 2> "$WORK/serve.err" &
        SERVER_PID=$!
        for _ in $(seq 100); do grep -q '^serving' "$WORK/serve.out" 2>/dev/null && break; sleep 0.2; done
        ENDPOINT=$(sed -n 's/^serving the tiny hub on //p' "$WORK/serve.out")
        [ -n "$ENDPOINT" ] || { cat "$WORK/serve.err"; exit 1; }
        echo "== tiny hub: $ENDPOINT"
        HF_ENDPOINT=$ENDPOINT "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" $FILES "$@" || status=$?
        echo "== server log:"; cat "$WORK/serve.err"
        ;;
    *)
        echo "usage: $0 [inproc|serve] [pytest args...]" >&2; exit 2
        ;;
esac
echo "== $(( $(date +%s) - start ))s, pytest exit status $status"
exit $status
