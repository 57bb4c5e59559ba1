"""Named special cases per family of architectures, grouped by modality.

The generic machinery (:mod:`..shrink`, :mod:`..smoke`, :mod:`..processors`) handles most
architectures from their configs and ``forward`` signatures alone.  What it cannot infer lives here,
as data or small named rules, one module per group of families:

* :mod:`.audio` — speech encoders, speech seq2seq, codecs, vocoders, text-to-speech;
* :mod:`.vision` — image/video backbones, SAM, keypoint matching, video models;
* :mod:`.detection` — detection, segmentation, depth, document layout and OCR models;
* :mod:`.size` — what keeps weights big (codebooks, vocoder upsampling, embedding tables);
* :mod:`.multimodal` — vision-language and omni models and their vision towers;
* :mod:`.text` — text, time-series and decision models.

Each module registers with the extension points of the generic modules:

* ``shrink.family_rule(name)`` — a rule ``rule(node, ctx)`` run on every shrunk config dict;
* ``shrink.model_type_values(model_type, values)`` — values set on the shrunk config of a model type
  (merged into ``shrink.MODEL_TYPE_CONFIG``; conflicting values from two modules are an error);
* ``smoke.input_builder(name)`` — how to build a forward argument ``name``;
* ``smoke.input_fixup(name)`` — ``fixup(ctx, inputs)`` adjusting the dummy inputs of a family;
* ``processors.IMAGE_PROCESSOR_OF[model_type]`` / ``processors.FEATURE_EXTRACTOR_OF[model_type]`` —
  the model type whose processor a model type without one of its own uses.

Every rule checks that a node / model is one of its family's before touching it, so rules of
different families never interfere; each is covered by the coverage sweep and ``tests/test_families_<module>.py``.
"""

from . import audio, detection, multimodal, size, text, vision  # noqa: F401
